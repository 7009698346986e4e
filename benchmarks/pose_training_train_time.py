"""Tiny DeepLabCut training time: `dlc_train.py` on the demo's tiny project, in its job environment.

    .venv/bin/python benchmarks/pose_training_train_time.py [--runs 3] [--epochs 2]

The job runs as the sandbox runs it (its own venv, S3 on a local sandbox): import from S3, train
(from scratch, 96x80 crop, batch 4), evaluate, export. Reports the job's own step timings (manifest)
and the process wall time, medians over --runs. The first use builds the environment (not timed here:
see pose_training_env_build.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from local_aws import client_env, sandbox_client  # noqa: E402
from local_aws.demo_data import pose_training as tiny  # noqa: E402
from local_aws.server import Sandbox  # noqa: E402
from local_aws.stack import pick_port  # noqa: E402
from tests.include.conftest import job_env_python  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    python = job_env_python("pose_training")
    sandbox = Sandbox(port=pick_port(0)).start()
    try:
        s3 = sandbox_client("s3", sandbox.url)
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="tiny.zip", Body=tiny.project_zip())
        rows = []
        for run in range(args.runs):
            env = {
                **client_env(sandbox.url),
                "PATH": os.environ["PATH"],
                "TGT_S3_BUCKET": "bench",
                "DLC_PROJECT_PATH": "tiny.zip",
                "OUTPUT_PATH": f"out/{run}",
                "DLC_EPOCHS": str(args.epochs),
                "DLC_BATCH_SIZE": "4",
                "DLC_BACKBONE_WEIGHTS": "none",
                "DLC_TRAIN_CROP": "96x80",
            }
            started = time.perf_counter()
            done = subprocess.run(
                [str(python), "dlc_train.py"],
                cwd=REPO / "include" / "pose_training",
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"run {run} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
            manifest = json.loads(
                s3.get_object(Bucket="bench", Key=f"out/{run}/manifest.json")["Body"].read()
            )
            timings = manifest["timings_s"]
            rows.append({"wall": wall, **timings})
            print(
                f"run {run + 1}: wall {wall:.1f} s, import {timings['import']:.1f} s, train {timings['train']:.1f} s"
            )
    finally:
        sandbox.stop()
    print(
        f"\n{os.cpu_count()} CPUs, {args.epochs} epochs, {tiny.FRAMES // tiny.LABELED_EVERY} labeled frames "
        f"{tiny.WIDTH}x{tiny.HEIGHT}, resnet_50 from scratch; median of {args.runs} runs:"
    )
    for column in ("train", "import", "wall"):
        print(f"  {column:<7} {statistics.median(r[column] for r in rows):6.1f} s")


if __name__ == "__main__":
    main()
