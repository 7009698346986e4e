"""First build of the pose_training job environment (DeepLabCut 3 + CUDA torch), as on a fresh CI machine.

    .venv/bin/python benchmarks/pose_training_env_build.py [--runs 1] [--keep-pip-cache]

Builds include/pose_training/requirements.txt with local_aws.environments.ensure_env into an empty
temporary cache, pip's own cache off (PIP_NO_CACHE_DIR=1) unless --keep-pip-cache: what `make test` pays
once in a fresh clone. Reports wall time (median of --runs) and the environment's size on disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from local_aws.environments import ensure_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep-pip-cache", action="store_true")
    args = parser.parse_args()
    requirements = (REPO / "include" / "pose_training" / "requirements.txt").read_text()
    if not args.keep_pip_cache:
        os.environ["PIP_NO_CACHE_DIR"] = "1"
    times, size = [], ""
    for run in range(args.runs):
        cache = Path(tempfile.mkdtemp(prefix="orchard-env-bench-"))
        os.environ["ORCHARD_ENV_CACHE"] = str(cache)
        started = time.perf_counter()
        bin_dir = ensure_env(requirements, label="pose-training", log=lambda line: None)
        times.append(time.perf_counter() - started)
        size = subprocess.run(
            ["du", "-sh", str(bin_dir.parent)], capture_output=True, text=True
        ).stdout.split()[0]
        print(f"run {run + 1}: {times[-1]:.0f} s, {size} on disk")
        shutil.rmtree(cache, ignore_errors=True)
    pip_cache = "pip cache kept" if args.keep_pip_cache else "no pip cache"
    print(
        f"\n{os.cpu_count()} CPUs, {pip_cache}: first build {statistics.median(times):.0f} s "
        f"(median of {args.runs}), {size}"
    )


if __name__ == "__main__":
    main()
