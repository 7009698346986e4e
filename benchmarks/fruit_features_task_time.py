"""What fruit_features' own tasks on its critical path cost, each task body timed in a fresh process against
a sandbox (issue 17.1): `check_inputs`, `find_model`, `model_ready`, `cluster_requests`,
`scaling_run.record_timing`, `scaling_run.terminate_cluster` and `sweep_leftovers`.

    .venv/bin/python benchmarks/fruit_features_task_time.py [--rounds 3] [--before /path/to/checkout]
        [--latency-ms 0] [--profile]

Setup (once, untimed): a sandbox of the benchmark's own (benchmarks/_bench_sandbox.py), the job code
deployed, the demo's photos (local_aws.demo_data.fruit_features, 300 images), the DAG's IAM roles with
`aws_default` assuming the Airflow role as the local stack's connection does, the ONNX model's two objects
where the export job writes them (model.onnx, model.json: the export itself is not timed here), and one EMR
cluster of the sandbox whose one spark-submit step has COMPLETED (a no-op script: `record_timing` reads the
step's timeline) with the step's metrics.json where the job writes it. The teardowns are timed on a name
with no live cluster (their own code: clients and ListClusters; terminating a cluster is AWS time).

Each sample is a new Python process (as each task is) that first imports what the stack's forkserver
preloads (local_aws/stack/environment.py TASK_PRELOAD_MODULES) and parses the DAG file (untimed), then
times the task's own callable from that DAG file (`dag.task_dict[id].python_callable`) called with the
XComs the DAG passes it. With `--before <checkout>` each round also runs the same tasks from that
checkout's DAG file and plugins, alternating, and the table gives per task the median seconds of each and
the median of the per-round ratios (this checkout / before). `--profile` prints one cProfile run of each
task (top functions by cumulative time) instead. Each sample also counts orchard's settings reads and the
provider hooks' boto3 sessions (the last column: after vs before).
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
    arguments,
    preloaded_dag,
    report,
    run_child,
    timed_call,
)  # noqa: E402 (benchmarks/ is the script's folder)

DAG_ID = "fruit_features"
RUN_ID = "manual__2026-12-07T09:00:00+00:00"
TASKS = (
    "check_inputs",
    "find_model",
    "model_ready",
    "cluster_requests",
    "scaling_run.record_timing",
    "scaling_run.terminate_cluster",
    "sweep_leftovers",
)
NOOP_STEP = "print('benchmark step')\n"


# ---------------------------------------------------------------- setup (this process, once)


def wait_for_step(emr, cluster_id: str, step_id: str, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
        if state in ("COMPLETED", "FAILED", "CANCELLED"):
            if state != "COMPLETED":
                raise RuntimeError(f"the benchmark's step ended {state}")
            return
        time.sleep(1)
    raise TimeoutError("the benchmark's step did not finish")


def completed_step(s3, settings, point: dict) -> tuple[str, str]:
    """A sandbox cluster with one COMPLETED no-op spark-submit step, and the metrics.json the job writes."""
    import boto3

    from orchard.fruit_features.plan import split_uri

    emr = boto3.client("emr")
    key = "fruit_features/benchmark/noop.py"
    s3.put_object(Bucket=settings.artifacts_bucket, Key=key, Body=NOOP_STEP.encode())
    cluster_id = emr.run_job_flow(
        Name="fruit-features-benchmark",
        ReleaseLabel="emr-7.5.0",
        Applications=[{"Name": "Spark"}],
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole=settings.emr_instance_profile,
        ServiceRole=settings.emr_service_role,
        Tags=[{"Key": "orchard:dag", "Value": DAG_ID}],  # the pipeline's role may describe only these
    )["JobFlowId"]
    step = {
        "Name": "noop",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", f"s3://{settings.artifacts_bucket}/{key}"],
        },
    }
    [step_id] = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step])["StepIds"]
    wait_for_step(emr, cluster_id, step_id)
    metrics = {
        "images_found": 300,
        "images_per_second": 40.0,
        "default_parallelism": 2,
        "timings": {"features_s": 7.5, "pca_s": 0.4},
    }
    bucket, prefix = split_uri(point["output"])
    s3.put_object(Bucket=bucket, Key=f"{prefix}metrics.json", Body=json.dumps(metrics).encode())
    return cluster_id, step_id


def setup(latency_ms: int) -> tuple[object, dict]:
    """The sandbox process and the environment + XComs the children need."""
    from benchmarks._bench_sandbox import seeded_sandbox
    from local_aws.demo_data import fruit_features as demo_data
    from orchard.fruit_features import plan as fruit_plan

    process, box = seeded_sandbox(latency_ms, DAG_ID, demo_data.upload)
    s3, settings, params = box["s3"], box["settings"], box["params"]
    plan = fruit_plan.check_inputs(params, s3, DAG_ID, RUN_ID, settings)
    location = fruit_plan.model_location(settings, params["feature_model"])
    bucket, prefix = fruit_plan.split_uri(location["prefix"])
    s3.put_object(Bucket=bucket, Key=f"{prefix}model.onnx", Body=b"onnx")
    info = {"model": params["feature_model"], "weights": "wheel", "max_abs_diff": 1e-6}
    s3.put_object(Bucket=bucket, Key=f"{prefix}model.json", Body=json.dumps(info).encode())
    started = time.monotonic()
    cluster_id, step_id = completed_step(s3, settings, plan["points"][0])
    print(f"setup: the cluster's step took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return process, {
        "env": box["env"],
        "params": params,
        "plan": plan,
        "model": {**location, "exists": True},
        "cluster_id": cluster_id,
        "step_id": step_id,
    }


def task_arguments(task_id: str, data: dict, requests: list | None) -> list:
    """The XComs the DAG passes each task (positional as in dags/fruit_features.py)."""
    plan, model = data["plan"], data["model"]
    point = plan["points"][0]
    return {
        "check_inputs": [],
        "find_model": [plan],
        "model_ready": [model],
        "cluster_requests": [plan, model, "orchard-fruit-features-imdsv2"],
        "scaling_run.record_timing": [data["cluster_id"], [data["step_id"]], point],
        # a name with no live cluster: the teardown's own code (its clients, ListClusters), no wait
        "scaling_run.terminate_cluster": [{"name": "fruit-features-benchmark-none", "dag": DAG_ID}],
        "sweep_leftovers": [requests],
    }[task_id]


# ---------------------------------------------------------------- child (one task process)


class _TaskInstance:
    """What failure_causes asks of a task instance: the task, and the run's task states (none failed)."""

    def __init__(self, task):
        self.task, self.dag_id, self.run_id = task, DAG_ID, RUN_ID

    def get_task_states(self, **_kwargs) -> dict:
        return {}


def child(task_id: str, arguments_file: str, profile: bool) -> None:
    """In the task process: preload, parse, then time the task's callable."""
    import inspect

    dag = preloaded_dag(DAG_ID)
    call = json.loads(Path(arguments_file).read_text())
    task = dag.task_dict[task_id]
    kwargs = {"params": call["params"], "run_id": RUN_ID, "dag": dag, "ti": _TaskInstance(task)}
    callable_ = task.python_callable
    accepted = inspect.signature(callable_).parameters  # Airflow passes only the context a task asks for
    kwargs = {name: value for name, value in kwargs.items() if name in accepted}
    counts = count_settings_reads_and_sessions(callable_.__globals__)
    seconds, result = timed_call(callable_, call["args"], kwargs, profile)
    print(json.dumps({"seconds": seconds, "result": result, "counts": counts}, default=str))


def count_settings_reads_and_sessions(dag_globals: dict) -> dict[str, int]:
    """Counters of orchard's settings reads (on a live stack each looks up every field the environment lacks
    as an Airflow Variable: an execution-API round trip each; off here) and of the provider hooks' sessions.
    `dag_globals`: the DAG file's, whose tasks call the `load_settings` it imported."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    import orchard.settings

    counts = {"settings": 0, "sessions": 0}
    load_settings, get_session = orchard.settings.load_settings, AwsGenericHook.get_session

    def read(*args, **kwargs):
        counts["settings"] += 1
        return load_settings(*args, **kwargs)

    def session(self, *args, **kwargs):
        counts["sessions"] += 1
        return get_session(self, *args, **kwargs)

    orchard.settings.load_settings, AwsGenericHook.get_session = read, session
    if "load_settings" in dag_globals:
        dag_globals["load_settings"] = read
    return counts


def sample(checkout: Path, task_id: str, data: dict, requests: list | None, profile: bool) -> dict:
    return run_child(
        __file__,
        checkout,
        task_id,
        {"args": task_arguments(task_id, data, requests), "params": data["params"]},
        data["env"],
        profile,
    )


def main() -> int:
    parser = arguments(__doc__, rounds=3)
    options = parser.parse_args()
    if options.child:
        child(*options.child, options.profile)
        return 0
    process, data = setup(options.latency_ms)
    checkouts = {"after": REPO} | ({"before": options.before.resolve()} if options.before else {})
    seconds: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], dict] = {}
    try:
        for _ in range(1 if options.profile else options.rounds):
            for label, checkout in checkouts.items():
                requests = None
                for task_id in TASKS:
                    result = sample(checkout, task_id, data, requests, options.profile)
                    requests = result["result"] if task_id == "cluster_requests" else requests
                    seconds.setdefault((label, task_id), []).append(result["seconds"])
                    counts[(label, task_id)] = result["counts"]
    finally:
        process.terminate()
        process.wait()

    def reads_and_sessions(task_id: str) -> str:
        return " vs ".join("{settings}/{sessions}".format(**counts[(label, task_id)]) for label in checkouts)

    report(TASKS, checkouts, seconds, ("settings reads/sessions", reads_and_sessions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
