"""Run one job process: stream its output line by line, stop it on request or at its time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Outcome:
    exit_code: int
    timed_out: bool = False
    stopped: bool = False


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Callable[[str], None],
    stop: threading.Event,
    timeout_s: float | None = None,
) -> Outcome:
    """Run argv to its end; `stop` or the timeout sends SIGTERM to its process group, then SIGKILL."""
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a stop reaches its children too
    )
    reader = threading.Thread(target=_pump, args=(process, log), daemon=True)
    reader.start()
    outcome = _wait(process, stop, timeout_s)
    reader.join(timeout=10)
    return outcome


def _pump(process: subprocess.Popen, log: Callable[[str], None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        log(line)


def _wait(process: subprocess.Popen, stop: threading.Event, timeout_s: float | None) -> Outcome:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            return Outcome(exit_code=process.wait(timeout=0.1))
        except subprocess.TimeoutExpired:
            pass
        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            _terminate(process)
            return Outcome(exit_code=process.returncode, timed_out=not stop.is_set(), stopped=stop.is_set())


def _terminate(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
