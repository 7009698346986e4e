"""What aerial_pretraining's own tasks cost: `validate_inputs` (first on the critical path), and after the
probes `evaluate`, `publish_report` and `stop_jobs_left_running`, each task body timed in a fresh process against a sandbox (issue 17.1).

    .venv/bin/python benchmarks/aerial_pretraining_task_time.py [--rounds 5] [--before /path/to/checkout]
        [--latency-ms 0] [--profile]

Setup (once, untimed): a sandbox of the benchmark's own (benchmarks/_bench_sandbox.py), the job code
deployed, the demo's data (local_aws.demo_data, 60 patches), the DAG's IAM roles with `aws_default`
assuming the Airflow role as the local stack's connection does, and the run's four SageMaker jobs started
with the DAG's own requests (plan_jobs, probe_requests) and waited for. Their descriptions become the
XComs the operators push (`{"Training": DescribeTrainingJob}`, JSON round trip).

Each sample is a new Python process (as each task is) that first imports what the stack's forkserver
preloads (local_aws/stack/environment.py TASK_PRELOAD_MODULES) and parses the DAG file (the worker does
both before the task runs: untimed), then times the task's own callable from that DAG file
(`dag.task_dict[id].python_callable`) called with those XComs. With `--before <checkout>` each round also
runs the same tasks from that checkout's DAG file and plugins, alternating, and the table gives per task
the median seconds of each and the median of the per-round ratios (this checkout / before).
`--profile` prints one cProfile run of each task (top functions by cumulative time) instead.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if "--child" not in sys.argv:  # a child imports from the checkout it runs in (PYTHONPATH)
    sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from _task_process import (
    OutletEventsStandIn,
    TaskInstanceStandIn,
    arguments,
    preloaded_dag,
    report,
    run_child,
    timed_call,
)  # noqa: E402 (benchmarks/ is the script's folder)

DAG_ID = "aerial_pretraining"
RUN_ID = "manual__2026-12-07T09:00:00+00:00"
TASKS = ("validate_inputs", "evaluate", "publish_report", "stop_jobs_left_running")
PATCHES = 60


# ---------------------------------------------------------------- setup (this process, once)


def wait_for(describe, status_key: str, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = describe()
        if job[status_key] in ("Completed", "Failed", "Stopped"):
            if job[status_key] != "Completed":
                raise RuntimeError(f"job ended {job[status_key]}: {job.get('FailureReason')}")
            return job
        time.sleep(1)
    raise TimeoutError("job did not finish")


def as_xcom(kind: str, description: dict) -> dict:
    """What the SageMaker operator pushes: its describe answer, datetimes as strings."""
    return {kind: json.loads(json.dumps(description, default=str))}


def run_jobs(params: dict, settings) -> dict:
    """The run's four jobs with the DAG's requests; the operators' XComs of each."""
    import boto3

    from orchard.aerial_pretraining.plan import job_plan, probe_configs

    sagemaker = boto3.client("sagemaker")
    plan = job_plan(params, settings, RUN_ID)
    sagemaker.create_processing_job(**plan["prepare"])
    name = plan["prepare"]["ProcessingJobName"]
    prepared = wait_for(
        lambda: sagemaker.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus"
    )
    sagemaker.create_training_job(**plan["pretrain"])
    name = plan["pretrain"]["TrainingJobName"]
    pretrained = wait_for(lambda: sagemaker.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    pretrained_xcom = as_xcom("Training", pretrained)
    probes = []
    for config in probe_configs(params, settings, RUN_ID, plan["code"], pretrained_xcom):
        sagemaker.create_training_job(**config)
    for config in probe_configs(params, settings, RUN_ID, plan["code"], pretrained_xcom):
        name = config["TrainingJobName"]
        probe = wait_for(
            lambda n=name: sagemaker.describe_training_job(TrainingJobName=n), "TrainingJobStatus"
        )
        probes.append(as_xcom("Training", probe))
    return {"prepared": as_xcom("Processing", prepared), "pretrained": pretrained_xcom, "probes": probes}


def setup(latency_ms: int) -> tuple[object, dict]:
    """The sandbox process and the environment + XComs the children need."""
    from benchmarks._bench_sandbox import seeded_sandbox
    from local_aws.demo_data import aerial_pretraining as demo_data

    def upload(s3, settings) -> dict:
        return {**demo_data.upload(s3, settings, patches=PATCHES), "probe_epochs": 2}

    process, box = seeded_sandbox(latency_ms, DAG_ID, upload)
    started = time.monotonic()
    xcoms = run_jobs(box["params"], box["settings"])
    print(f"setup: the run's jobs took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return process, {"env": box["env"], "params": box["params"], **xcoms}


def task_arguments(task_id: str, data: dict, evaluation: dict | None) -> tuple[list, dict]:
    """The XComs the DAG passes each task (positional as in dags/aerial_pretraining.py)."""
    if task_id == "evaluate":
        return [data["probes"]], {}
    if task_id in ("validate_inputs", "stop_jobs_left_running"):
        return [], {}
    promotion = {"promoted": False, "reason": "benchmark"}  # not_promoted's return, as in a gated run
    approval = {"required": False}
    return [data["prepared"], data["pretrained"], data["probes"], evaluation, None, promotion, approval], {}


# ---------------------------------------------------------------- child (one task process)


def child(task_id: str, arguments_file: str, profile: bool) -> None:
    """In the task process: preload, parse, then time the task's callable."""
    import inspect

    dag = preloaded_dag(DAG_ID)
    call = json.loads(Path(arguments_file).read_text())
    params = call["params"]
    kwargs = {"params": params, "run_id": RUN_ID, **call["kwargs"]}
    if task_id == "publish_report":
        kwargs.update(ti=TaskInstanceStandIn(), outlet_events=OutletEventsStandIn())
    callable_ = dag.task_dict[task_id].python_callable
    accepted = inspect.signature(callable_).parameters  # Airflow passes only the context a task asks for
    kwargs = {name: value for name, value in kwargs.items() if name in accepted}
    seconds, result = timed_call(callable_, call["args"], kwargs, profile)
    print(json.dumps({"seconds": seconds, "result": result}, default=str))


def sample(checkout: Path, task_id: str, data: dict, evaluation: dict | None, profile: bool) -> dict:
    args, kwargs = task_arguments(task_id, data, evaluation)
    return run_child(
        __file__,
        checkout,
        task_id,
        {"args": args, "kwargs": kwargs, "params": data["params"]},
        data["env"],
        profile,
    )


def main() -> int:
    parser = arguments(__doc__, rounds=5)
    options = parser.parse_args()
    if options.child:
        child(*options.child, options.profile)
        return 0
    process, data = setup(options.latency_ms)
    checkouts = {"after": REPO} | ({"before": options.before.resolve()} if options.before else {})
    seconds: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(1 if options.profile else options.rounds):
            for label, checkout in checkouts.items():
                evaluation = None
                for task_id in TASKS:
                    result = sample(checkout, task_id, data, evaluation, options.profile)
                    evaluation = result["result"] if task_id == "evaluate" else evaluation
                    seconds.setdefault((label, task_id), []).append(result["seconds"])
    finally:
        process.terminate()
        process.wait()
    report(TASKS, checkouts, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
