"""The own code of each pose_training task, timed in a fresh process per task as Airflow runs it, against
a sandbox of its own; two checkouts' plugins alternate within each round (a branch against its base).

    .venv/bin/python benchmarks/pose_training_task_code.py --base /path/to/base/checkout [--rounds 5]

POSE_BENCH_PROFILE=<task> also prints that task's cProfile (cumulative) for each sample.

Each sample is a new Python process that first imports, untimed, what the local stack's forkserver preloads
(local_aws.stack.environment.TASK_PRELOAD_MODULES), then runs one task's callable from the DAG
(`ensure_event_path`, `validate_project`, `ensure_batch`, `check_export`, `stop_training`) on the
connection the stack uses (`aws_default` with a role_arn: every session assumes it). It reports the
seconds, the settings reads (each looks up every Airflow Variable the environment lacks: an execution-API
round trip each inside Airflow; none here, where ORCHARD_USE_AIRFLOW_VARIABLES=0) and the AWS sessions the
provider built. `check_export` checks an export written as a job writes it and describes a Batch job
submitted (and terminated) for it; the figures: medians over rounds, and the median per-round ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

TASKS = ("ensure_event_path", "validate_project", "ensure_batch", "check_export", "stop_training")
PARAMS = {
    "gpu_family": "g4dn",
    "capacity": "SPOT",
    "max_vcpus": 16,
    "max_runtime_minutes": 60,
    "poll_seconds": 2,
    "max_zip_mb": 2048,
    "max_unzipped_mb": 8192,
    "max_zip_ratio": 100,
    "project_uri": None,
    **{
        "epochs": 2,
        "batch_size": 4,
        "net_type": "resnet_50",
        "backbone_weights": "none",
        "train_crop": "96x80",
    },
}


# ------------------------------------------------------------------------------------- child process


def _counters() -> dict[str, int]:
    """Count settings reads and provider sessions from now on (patched where the code looks them up)."""
    from airflow.providers.amazon.aws.hooks import base_aws

    import orchard.settings
    from orchard.pose_training import infra

    counts = {"settings": 0, "sessions": 0}
    load, create = orchard.settings.load_settings, base_aws.SessionFactory.create_session

    def counting_load(*args, **kwargs):
        counts["settings"] += 1
        return load(*args, **kwargs)

    def counting_create(self, *args, **kwargs):
        counts["sessions"] += 1
        return create(self, *args, **kwargs)

    orchard.settings.load_settings = infra.load_settings = counting_load
    base_aws.SessionFactory.create_session = counting_create
    return counts


def _run_task(task: str, state: dict) -> None:
    from orchard.pose_training import infra, report, upload

    if task == "ensure_event_path":
        infra.ensure_watched_event_path(state["parsed"])
    elif task == "validate_project":
        upload.prepare_project(state["project"], PARAMS, _DagParams(), state["project"]["run_id"], log=_quiet)
    elif task == "ensure_batch":
        infra.ensure_run_batch(PARAMS)
    elif task == "check_export":
        report.publish_export(state["project"], state["batch"], state["job_id"])
    elif task == "stop_training":
        infra.stop_run_jobs([state["project"]], PARAMS, log=_quiet)


class _DagParams:
    """The DAG's metadata Params (what `dag.params.get_param` gives validate_project), without a parse."""

    def get_param(self, name: str):
        from airflow.sdk import Param

        schemas = {
            "epochs": Param(200, type="integer", minimum=1, maximum=5000),
            "batch_size": Param(8, type="integer", minimum=1, maximum=128),
            "net_type": Param("resnet_50", type="string"),
            "backbone_weights": Param(None, type=["null", "string"]),
            "train_crop": Param(None, type=["null", "string"]),
        }
        return schemas[name]


def _quiet(line: str) -> None:
    pass


def child(task: str, state_file: str) -> None:
    import importlib

    from local_aws.stack.environment import TASK_PRELOAD_MODULES

    for module in TASK_PRELOAD_MODULES:
        importlib.import_module(module)
    from orchard.settings import load_settings

    state = json.loads(Path(state_file).read_text())
    state["parsed"] = load_settings(variables=False)  # what the DAG file parsed (not the task's read)
    counts = _counters()
    profile = None
    if os.environ.get("POSE_BENCH_PROFILE") == task:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    started = time.perf_counter()
    _run_task(task, state)
    seconds = time.perf_counter() - started
    if profile:
        import pstats

        profile.disable()
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    print(json.dumps({"seconds": seconds, **counts}))


# ------------------------------------------------------------------------------------------- parent


def prepare(url: str, state_file: Path) -> str:
    """The sandbox as a run finds it before each task: Airflow's role (include/iam/pose_training.json), the
    upload, the Batch setup, a job and its export. Returns the role's ARN."""
    import boto3
    from PIL import Image

    from local_aws.demo_data import pose_training as demo
    from local_aws.iam_setup import DEMO_AIRFLOW_ROLE, create_pipeline_roles, settings_buckets
    from local_aws.stack.environment import load_settings
    from orchard.pose_training import infra, upload

    settings = load_settings()
    role_arn = create_pipeline_roles(
        url, ["pose_training"], airflow_role=DEMO_AIRFLOW_ROLE, buckets=settings_buckets(settings)
    )
    s3, batch = boto3.client("s3"), boto3.client("batch")
    for bucket in (settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket):
        s3.create_bucket(Bucket=bucket)
    demo.create_batch_roles(boto3.client("iam"), settings)
    key = f"{infra.WATCHED_PREFIX}{demo.PROJECT}.zip"
    s3.put_object(Bucket=settings.data_bucket, Key=key, Body=demo.project_zip())
    [project] = upload.projects_of_run(
        {**PARAMS, "project_uri": f"s3://{settings.data_bucket}/{key}"},
        "pose_training",
        "bench",
        [],
        settings,
    )
    # as an upload's: validate_project claims it (the first sample creates the marker, later ones find
    # it held by this run and go on)
    project.update(source="upload", object_version="etag:benchmark")
    made = infra.ensure_batch(batch, boto3.client("ec2"), settings, _spec(settings), log=_quiet)
    job_id = batch.submit_job(
        jobName=project["job_name"], jobQueue=made["job_queue"], jobDefinition=made["job_definition_arn"]
    )["jobId"]
    batch.terminate_job(jobId=job_id, reason="benchmark: only its description is read")
    bucket, _, prefix = project["output_uri"][len("s3://") :].partition("/")
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(png, format="PNG")
    files = {
        f"{prefix}model/export/snapshot-2.pt": b"weights" * 1000,
        f"{prefix}evaluation/CombinedEvaluation-results.csv": b"rmse\n4.5\n",
        f"{prefix}evaluation/plots/Training-img000.png": png.getvalue(),
        f"{prefix}evaluation/plots/Test-img002.png": png.getvalue(),
    }
    for file_key, body in files.items():
        s3.put_object(Bucket=bucket, Key=file_key, Body=body)
    manifest = {
        "net_type": "resnet_50",
        "epochs": 2,
        "batch_size": 4,
        "backbone_weights": "none",
        "metrics": {"test rmse": 4.5, "train rmse": 3.0},
        "learning_curve": [
            {"step": 1, "losses/train.total_loss": 0.3},
            {"step": 2, "losses/train.total_loss": 0.1},
        ],
        "files": [{"key": k, "bytes": len(b)} for k, b in files.items()],
        "evaluation_plots": {"train": [list(files)[2]], "test": [list(files)[3]]},
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}manifest.json", Body=json.dumps(manifest).encode())
    batch_xcom = {**made, "instance_type": "g4dn.xlarge", "capacity": "SPOT"}
    state_file.write_text(json.dumps({"project": project, "batch": batch_xcom, "job_id": job_id}))
    return role_arn


def _spec(settings):
    from orchard.pose_training.infra import BatchSpec

    return BatchSpec("g4dn", "SPOT", 16, 3600, settings.data_bucket)


def sample(task: str, env: dict[str, str], state_file: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", task, str(state_file)], env=env, capture_output=True, text=True
    )
    if os.environ.get("POSE_BENCH_PROFILE") == task:
        print(done.stderr[-12000:])
    if done.returncode:
        raise RuntimeError(f"{task} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="the other checkout (its plugins/): required")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.base is None:
        parser.error("--base is required")

    from _bench_sandbox import start_sandbox

    from local_aws import aws_connection

    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    sandbox, url = start_sandbox(0)
    state_file = Path(tempfile.mkdtemp(prefix="orchard-pose-bench-")) / "state.json"
    try:
        sys.path.insert(0, str(REPO / "plugins"))
        role_arn = prepare(url, state_file)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(state_file.parent),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__AWS__SESSION_FACTORY": "orchard.aws_session.SharedLoaderSessionFactory",
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(url, role_arn=role_arn),
            "ORCHARD_USE_AIRFLOW_VARIABLES": "0",
        }
        arms = {
            name: {**env, "PYTHONPATH": os.pathsep.join([str(root / "plugins"), str(REPO)])}
            for name, root in (("this", REPO), ("base", args.base.resolve()))
        }
        found: dict[str, dict[str, list[dict]]] = {a: {t: [] for t in TASKS} for a in arms}
        for round_ in range(args.rounds):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
            for task in TASKS:
                for arm in order:
                    found[arm][task].append(sample(task, arms[arm], state_file))
            print(f"round {round_ + 1} done", flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait()
    print(
        f"pose_training task code, median of {args.rounds} fresh processes (this = {REPO}, base = {args.base}):"
    )
    print(f"  {'task':18} {'this s':>7} {'base s':>7} {'this/base':>9}  reads/sessions this, base")
    for task in TASKS:
        this, base = found["this"][task], found["base"][task]
        ratio = statistics.median(t["seconds"] / b["seconds"] for t, b in zip(this, base))
        print(
            f"  {task:18} {statistics.median(t['seconds'] for t in this):7.3f} "
            f"{statistics.median(b['seconds'] for b in base):7.3f} {ratio:9.2f}  "
            f"{this[0]['settings']}/{this[0]['sessions']}, {base[0]['settings']}/{base[0]['sessions']}"
        )
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
