"""A sandbox of a benchmark's own: `python -m local_aws serve` on a free port, this process's AWS clients
pointed at it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_sandbox(latency_ms: int) -> tuple[subprocess.Popen, str]:
    """Start it with `latency_ms` of added API latency; return its process and URL once it answers."""
    from local_aws import client_env
    from local_aws.server import is_up
    from local_aws.stack import pick_port

    port = pick_port(0)
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ORCHARD_SANDBOX_LATENCY_MS": str(latency_ms), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not is_up(url):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.1)
    os.environ.update(client_env(url))
    return process, url
