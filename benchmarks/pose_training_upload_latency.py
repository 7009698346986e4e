"""Upload → run start for pose_training on the local stack: S3 → EventBridge → SQS → Asset watcher → run.

    .venv/bin/python benchmarks/pose_training_upload_latency.py [--runs 5]

Starts the stack (sandbox + Airflow, Asset triggers on) in a temporary Airflow home, unpauses
pose_training and waits until its Asset watcher is running (a warm-up upload's run appears). Then
uploads --runs zips one at a time under the watched prefix and times each from the PutObject to the
run's start (run created by the scheduler: `queued_at`; running: `start_date`). The zips are not valid
projects, so each run ends in validate_project without training. Reports medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from local_aws.demo_data import pose_training as demo  # noqa: E402
from local_aws.stack import Stack, dags_folder, list_dags, load_settings, pick_port, wait_until_parsed  # noqa: E402
from orchard.pose_training import infra as pose_infra  # noqa: E402

DAG = "pose_training"
WATCH_POLL_SECONDS = 10  # dags/pose_training.py's AssetWatcher waiter_delay


def runs(stack: Stack) -> dict[str, dict]:
    found = stack.api("GET", f"/dags/{DAG}/dagRuns?limit=100").get("dag_runs", [])
    return {r["dag_run_id"]: r for r in found if r.get("run_type") == "asset_triggered"}


def upload_and_wait(stack: Stack, s3, bucket: str, name: str, timeout_s: float = 300) -> tuple[float, float]:
    before = set(runs(stack))
    uploaded = dt.datetime.now(dt.UTC)
    s3.put_object(Bucket=bucket, Key=f"{pose_infra.WATCHED_PREFIX}{name}.zip", Body=b"not a zip: fails fast")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = [r for run_id, r in runs(stack).items() if run_id not in before]
        if new and new[0].get("start_date"):
            queued = dt.datetime.fromisoformat(new[0]["queued_at"].replace("Z", "+00:00"))
            started = dt.datetime.fromisoformat(new[0]["start_date"].replace("Z", "+00:00"))
            return (queued - uploaded).total_seconds(), (started - uploaded).total_seconds()
        time.sleep(0.2)
    raise TimeoutError(f"no run for upload {name} after {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="orchard-bench-airflow-"))
    stack = Stack(
        home=home,
        sandbox_port=pick_port(0),
        api_port=pick_port(0),
        fresh_db=True,
        schedules=True,
        say=lambda line: None,
    )
    try:
        stack.start()
        settings = load_settings()
        s3 = stack.s3_client()
        stack.seed([])  # the buckets the settings name
        demo.create_batch_roles(demo._client_like(s3, "iam"), settings)
        pose_infra.ensure_event_path(
            s3, demo._client_like(s3, "events"), demo._client_like(s3, "sqs"), settings, log=lambda line: None
        )
        found = list_dags(dags_folder(), stack.env())
        wait_until_parsed(stack, found, [DAG], timeout_s=300)
        stack.api("PATCH", f"/dags/{DAG}", {"is_paused": False})
        warm_queued, warm_started = upload_and_wait(stack, s3, settings.data_bucket, "warm-up")
        print(
            f"warm-up (watcher registered on the next parse after unpausing): run started {warm_started:.1f} s "
            "after the upload"
        )
        measured = []
        for n in range(args.runs):
            time.sleep(3)  # let the previous run finish: one upload at a time
            measured.append(upload_and_wait(stack, s3, settings.data_bucket, f"bench-{n}"))
            print(
                f"upload {n + 1}: run queued after {measured[-1][0]:.1f} s, running after {measured[-1][1]:.1f} s"
            )
    finally:
        stack.stop()
    print(f"\nmedian of {args.runs} uploads (the watcher polls SQS every {WATCH_POLL_SECONDS} s):")
    print(f"  upload -> run queued   {statistics.median(m[0] for m in measured):5.1f} s")
    print(f"  upload -> run running  {statistics.median(m[1] for m in measured):5.1f} s")


if __name__ == "__main__":
    main()
