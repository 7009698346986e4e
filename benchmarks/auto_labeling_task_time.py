"""What auto_labeling's own tasks on its critical path cost: `validate_inputs`, `create_model`,
`create_endpoint_config`, `collect_predictions`, `build_manifest`, `read_verified`, `publish_report`,
`sweep_leftovers`, each task body timed in a fresh process against a sandbox (issue 17.1).

    .venv/bin/python benchmarks/auto_labeling_task_time.py [--runs 3] [--before /path/to/checkout]
        [--latency-ms 0] [--profile]

Setup (once, untimed): a sandbox of the benchmark's own (benchmarks/_bench_sandbox.py) with the demo's data
(local_aws.demo_data.auto_labeling: 300 frames, 6 shards of 50, the model, the workteam, the CORS rule), the
DAG's IAM roles with `aws_default` assuming the Airflow role as the local stack's connection does, and what
the endpoint and the `invoke` tasks would leave: one answer per frame in the endpoint's output folder (the
demo detector's JSON) and each shard's record, as the invoke operator writes them; and what a verification
job leaves for `read_verified`: its output manifest (every pre-label graded "good") and the auto-accept
policy file. `sweep_leftovers` finds nothing of the run left (the demo's way: the teardowns ran), its task
instance stand-in reports no failed task. (`invoke` is not timed here: it needs an endpoint InService.) Its XComs are what the
tasks return (the plan from this checkout's `validate_inputs`, run once untimed).

Each sample is a new Python process (as each task is) that first imports what the stack's forkserver
preloads (local_aws/stack/environment.py TASK_PRELOAD_MODULES) and parses the DAG file (the worker does
both before the task runs: untimed), then times the task's own callable from that DAG file
(`dag.task_dict[id].python_callable`). `create_model` / `create_endpoint_config` get names of their own per
sample (each one creates, as in a run). With `--before <checkout>` each round also runs the same tasks from
that checkout's DAG file and plugins, each task's two samples back to back (which goes first alternates by
round), and the table gives per task the median seconds of each
and the median of the per-round ratios (this checkout / before). `--profile` prints one cProfile run of each
task (top functions by cumulative time) instead. Settings come from the environment here
(ORCHARD_USE_AIRFLOW_VARIABLES=0): the Variable round trips a task saves in a stack are not in these figures.
"""

from __future__ import annotations

import json
import os
import sys
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

DAG_ID = "auto_labeling"
RUN_ID = "manual__2026-12-07T09:00:00+00:00"
TASKS = (
    "validate_inputs",
    "create_model",
    "create_endpoint_config",
    "collect_predictions",
    "build_manifest",
    "read_verified",
    "publish_report",
    "sweep_leftovers",
)
ANSWER = {  # the demo detector's answer (include/auto_labeling/inference.py)
    "model": "opencv-hog-people-detector",
    "image_size": {"width": 640, "height": 360, "depth": 3},
    "detections": [{"label": "pedestrian", "box": [10, 20, 40, 80], "score": 0.9}],
}


# ---------------------------------------------------------------- setup (this process, once)


def answer_the_shards(plan: dict) -> list[dict]:
    """Each frame answered in the endpoint's output folder and each shard's record, as `invoke` leaves
    them; returns the invoke tasks' summaries (what collect_predictions is given)."""
    import boto3

    from orchard.auto_labeling.s3_objects import split

    s3 = boto3.client("s3")
    summaries = []
    for shard in plan["shards"]:
        bucket, key = split(shard["frames_uri"])
        frames = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        results = []
        for frame in frames:
            output = f"{plan['output_path']}{frame.rsplit('/', 1)[-1]}.out"
            bucket, key = split(output)
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(ANSWER).encode())
            results.append({"input": frame, "status": "answered", "output": output})
        bucket, key = split(shard["record_uri"])
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"results": results}).encode())
        summaries.append({"record_uri": shard["record_uri"], "answered": len(results), "failed": 0})
    return summaries


def setup(latency_ms: int) -> tuple[object, dict]:
    """The sandbox process and the environment + XComs the children need."""
    from benchmarks._bench_sandbox import seeded_sandbox
    from local_aws.demo_data import auto_labeling as demo_data
    from orchard.auto_labeling.predictions import build_manifest, collect_predictions
    from tests.dag_files import load_dag

    process, box = seeded_sandbox(latency_ms, DAG_ID, demo_data.upload, job_code=False)
    os.environ.update(box["env"])
    dag = load_dag(REPO / "dags" / f"{DAG_ID}.py")
    params = box["params"]
    plan = dag.task_dict["validate_inputs"].python_callable(params=params, run_id=RUN_ID, dag=dag)["plan"]
    summaries = answer_the_shards(plan)
    collected = collect_predictions(summaries, plan)
    manifest = build_manifest(plan, collected)
    return process, {
        "env": box["env"],
        "params": params,
        "plan": plan,
        "summaries": summaries,
        "collected": collected,
        "manifest": manifest,
        "job": grade_the_manifest(plan, manifest),
    }


def grade_the_manifest(plan: dict, manifest: dict) -> dict:
    """A verification job's output as Ground Truth leaves it (every line graded "good"), and the auto-accept
    policy the sandbox's job without workers writes beside it; returns what `label` gives read_verified."""
    import boto3

    from orchard.auto_labeling.s3_objects import split

    s3 = boto3.client("s3")
    bucket, key = split(manifest["manifest_uri"])
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    attribute, job_name = plan["verified_attribute"], "auto-labeling-bench-job"
    graded = [
        {
            **json.loads(line),
            attribute: {"class-name": "good"},
            f"{attribute}-metadata": {"class-name": "good"},
        }
        for line in lines
    ]
    output = f"{plan['labeling_output_uri']}{job_name}/manifests/output/output.manifest"
    bucket, key = split(output)
    s3.put_object(Bucket=bucket, Key=key, Body="".join(json.dumps(line) + "\n" for line in graded).encode())
    policy = key.split("/manifests/")[0] + "/annotations/auto-accept-policy.txt"
    s3.put_object(Bucket=bucket, Key=policy, Body=b"no worker: every label accepted (benchmark)")
    return {"output_manifest": output, "label_attribute": attribute, "job_name": job_name}


def task_arguments(task_id: str, data: dict, sample_id: str) -> tuple[list, dict]:
    """The XComs the DAG passes each task (positional as in dags/auto_labeling.py)."""
    plan = data["plan"]
    if task_id == "validate_inputs":
        return [], {}
    if task_id in ("create_model", "create_endpoint_config"):  # each sample creates its own
        names = {key: f"auto-labeling-bench-{sample_id}" for key in ("model_name", "endpoint_config_name")}
        return [{**plan, **names}], {}
    if task_id == "collect_predictions":
        return [data["summaries"], plan], {}
    if task_id == "build_manifest":
        return [plan, data["collected"]], {}
    if task_id == "read_verified":
        return [plan, data["job"]], {}
    if task_id == "sweep_leftovers":
        return [], {}
    return [plan, data["collected"], data["manifest"], None], {}  # publish_report, stop_at_manifest's way


# ---------------------------------------------------------------- child (one task process)


class _Dag:
    dag_id = DAG_ID


class _TaskInstance(TaskInstanceStandIn):
    """What failure_causes asks of a task instance too: the task, and the run's task states (none failed)."""

    def __init__(self, task):
        super().__init__()
        self.task, self.dag_id, self.run_id = task, DAG_ID, RUN_ID

    def get_task_states(self, **_kwargs) -> dict:
        return {}


def child(task_id: str, arguments_file: str, profile: bool) -> None:
    """In the task process: preload, parse, then time the task's callable."""
    import inspect

    dag = preloaded_dag(DAG_ID)
    call = json.loads(Path(arguments_file).read_text())
    kwargs = {"params": call["params"], "run_id": RUN_ID, "dag": _Dag(), **call["kwargs"]}
    if task_id in ("publish_report", "sweep_leftovers"):
        kwargs.update(ti=_TaskInstance(dag.task_dict[task_id]), outlet_events=OutletEventsStandIn())
    callable_ = dag.task_dict[task_id].python_callable
    accepted = inspect.signature(callable_).parameters  # Airflow passes only the context a task asks for
    kwargs = {name: value for name, value in kwargs.items() if name in accepted}
    seconds, result = timed_call(callable_, call["args"], kwargs, profile)
    print(json.dumps({"seconds": seconds, "result": result}, default=str))


def sample(checkout: Path, task_id: str, data: dict, sample_id: str, profile: bool) -> dict:
    args, kwargs = task_arguments(task_id, data, sample_id)
    return run_child(
        __file__,
        checkout,
        task_id,
        {"args": args, "kwargs": kwargs, "params": data["params"]},
        data["env"],
        profile,
    )


def main() -> int:
    parser = arguments(__doc__, rounds=3)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task ids")
    options = parser.parse_args()
    if options.child:
        child(*options.child, options.profile)
        return 0
    tasks = options.tasks.split(",")
    process, data = setup(options.latency_ms)
    checkouts = {"after": REPO} | ({"before": options.before.resolve()} if options.before else {})
    seconds: dict[tuple[str, str], list[float]] = {}
    try:
        for round_ in range(1 if options.profile else options.rounds):
            for task_id in tasks:  # each task's pair back to back, which checkout first alternating by round:
                # on a loaded machine a whole checkout's turn lasts long enough for the load to change
                order = list(checkouts.items())
                for label, checkout in order if round_ % 2 == 0 else reversed(order):
                    result = sample(checkout, task_id, data, f"{label}-{round_}", options.profile)
                    seconds.setdefault((label, task_id), []).append(result["seconds"])
    finally:
        process.terminate()
        process.wait()
    report(tasks, checkouts, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
