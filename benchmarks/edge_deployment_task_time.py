"""edge_deployment's own work around its IoT job: each of ensure_fleet, monitor, cleanup, report and
sweep_leftovers timed as a task runs it — in a fresh process that has the forkserver's preloaded modules
(untimed), against a sandbox of its own, under the pipeline's Airflow role (the connection's `role_arn`:
AssumeRole, as in the demo). `--latency-ms 50` adds a Region's round trip to every sandbox call.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/edge_deployment_task_time.py [--rounds 5] [--json out.json]
        [--before /path/to/another/checkout] [--latency-ms 50]

What each round does, each task in a new process: ensure_fleet (provision_fleet: a new fleet of the demo's
two devices, as in the demo, whose previous run deleted its fleet), then the round seeds what the steps
before monitor leave in the demo (an IoT job on that fleet, 150 captures per device in batches of 10 in the
agent's object layout and record format, the package's reference.json), then monitor (monitor_drift),
report (publish_report with monitor's result, then run_results.announce as the DAG's report task calls
them), cleanup (cleanup_run, delete_fleet as the demo asks: it removes the fleet) and sweep_leftovers
(sweep_run_resources: finds nothing left).
Prints each task body's seconds per round and the median, and what each asked AWS for (the provider hooks'
sessions: each one AssumeRole with the demo's role; the API calls, AssumeRole included); `--profile TASK`
prints a cProfile of one.
With `--before CHECKOUT` each round also runs the same four tasks with that checkout's plugins/ (its own
seed, same sandbox), alternating which goes first, and prints the median of the per-round ratios
this checkout / CHECKOUT.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if "--child" not in sys.argv:  # a child imports the code under test from its PYTHONPATH alone
    for path in (REPO, REPO / "plugins"):
        sys.path.insert(0, str(path))

DAG_ID = "edge_deployment"
RUN_ID = "manual__2026-12-07T10:00:00+00:00"  # + a count: each seed is a run of its own
TASKS = ("ensure_fleet", "monitor", "report", "cleanup", "sweep_leftovers")
PER_DEVICE, BATCH = 150, 10
CAPTURE_PREFIX = "edge_deployment/captures"
PACKAGE_PREFIX = "edge_deployment/packages"
MODEL = "fruit-colour"


def params() -> dict:
    from local_aws.demo_data.edge_deployment import DEVICES

    return {
        "fleet_name": "edge-demo-fleet",
        "device_names": list(DEVICES),
        "model_name": MODEL,
        "capture_buffer_size": 30,
        "capture_batch_size": BATCH,
        "capture_push_period_seconds": 4,
        "simulated_devices": False,
        "camera_images_uri": "",
        "poll_seconds": 2,
        "delete_fleet": True,
        "rotate_certificates": False,
        "calibration_uri": "s3://orchard-data/edge_deployment/demo/images/calibration/",
        "model_uri": "s3://orchard-data/edge_deployment/demo/model/model.tar.gz",
    }


# -- the child: one task body, timed ---------------------------------------------------------------------


def run_task(task: str, state: dict, profile: bool) -> tuple[float, dict]:
    """The task body's seconds, and what it asked AWS for: the sessions its hooks built, its API calls."""
    for module in PRELOADED:
        __import__(module)
    from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

    get_hook_lineage_collector()  # a task's runner has loaded the plugins before the task's code runs
    counts = count_aws_requests()
    body = {
        "ensure_fleet": lambda: ensure_fleet(state),
        "monitor": lambda: monitor(state),
        "report": lambda: report(state),
        "cleanup": lambda: cleanup(state),
        "sweep_leftovers": lambda: sweep(state),
    }[task]
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(body)
        seconds = time.perf_counter() - started
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        return seconds, counts
    started = time.perf_counter()
    body()
    return time.perf_counter() - started, counts


def count_aws_requests() -> dict:
    """Count the provider hooks' sessions (each one AssumeRole with the demo's role_arn) and the API calls
    (AssumeRole included) of this process from now on."""
    import collections

    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
    from botocore.client import BaseClient

    counts: dict = {"sessions": 0, "calls": collections.Counter()}
    get_session, make_api_call = AwsGenericHook.get_session, BaseClient._make_api_call

    def counting_session(self, *args, **kwargs):
        counts["sessions"] += 1
        return get_session(self, *args, **kwargs)

    def counting_call(self, operation_name, api_params):
        counts["calls"][operation_name] += 1
        return make_api_call(self, operation_name, api_params)

    AwsGenericHook.get_session, BaseClient._make_api_call = counting_session, counting_call
    return counts


def ensure_fleet(state: dict) -> None:
    from orchard.edge_deployment.fleet import provision_fleet

    fleet = provision_fleet(params(), state["key_arn"], PACKAGE_PREFIX, CAPTURE_PREFIX, state["run_id"])
    assert {d["certificate"] for d in fleet["devices"]} == {"created"}, fleet
    Path(state["fleet_file"]).write_text(json.dumps(fleet))


def monitor(state: dict) -> None:
    from orchard.edge_deployment.monitor import monitor_drift

    result = monitor_drift(
        state["package"], state["deployment"], params(), CAPTURE_PREFIX, DAG_ID, state["run_id"]
    )
    assert result["records"] == PER_DEVICE * len(params()["device_names"]), result
    Path(state["drift_file"]).write_text(json.dumps(result))


def report(state: dict) -> None:
    from orchard.edge_deployment.report import publish_report

    results = {
        "compiled": {"job_name": "bench-compile", "seconds": 12.0},
        "package": state["package"],
        "fleet": state["fleet"],
        "deployment": state["deployment"],
        "drift": json.loads(Path(state["drift_file"]).read_text()),
        "removed": [],
        "approval": None,
    }
    published = publish_report(DAG_ID, state["run_id"], results, None, None)
    announce_as_the_dag_does(published)


def announce_as_the_dag_does(published) -> None:
    """The DAG's report task announces the report it published: a checkout whose publish_report returns the
    URI alone announces without metrics (announce reads report.json back), one that returns them passes them."""
    from benchmarks._task_process import TaskInstanceStandIn
    from orchard.run_results import announce

    if isinstance(published, str):
        announce(TaskInstanceStandIn(), published, attention=[])
    else:
        announce(TaskInstanceStandIn(), published.uri, published.metrics, cost_usd=published.cost_usd)


def cleanup(state: dict) -> None:
    from orchard.edge_deployment.cleanup import cleanup_run

    removed = cleanup_run(params(), DAG_ID, state["run_id"], [])
    assert any(line.startswith("thing group") for line in removed), removed


def sweep(state: dict) -> None:
    from orchard.edge_deployment.cleanup import sweep_run_resources

    swept = sweep_run_resources(params(), DAG_ID, state["run_id"], [])
    assert not any(swept.values()), swept


# -- the parent: a sandbox, the seed, the rounds ------------------------------------------------------


def seed(s3, settings, run_id: str, key_arn: str, fleet: dict) -> dict:
    """What the steps between ensure_fleet and monitor leave: the fleet's IoT job, the devices' captures,
    the reference."""
    import boto3
    import numpy as np

    from orchard import naming

    job_id = naming.resource_name("iot_job", DAG_ID, run_id)
    boto3.client("iot").create_job(
        jobId=job_id, targets=[fleet["thing_group_arn"]], document=json.dumps({"operation": "bench"})
    )
    rng = np.random.default_rng(0)
    reference = {
        "inputs": {
            "bin_edges": np.linspace(0, 1, 21).round(6).tolist(),
            "counts": [5] * 20,
            "mean": 0.5,
            "std": 0.2,
        },
        "predictions": {"classes": 4, "counts": [10, 10, 10, 10]},
    }
    s3.put_object(Bucket=settings.artifacts_bucket, Key="bench/reference.json", Body=json.dumps(reference))
    time.sleep(1.1)  # captures after the job's createdAt (whole seconds in the sandbox)
    for device in params()["device_names"]:
        for batch in range(PER_DEVICE // BATCH):
            records = [capture_record(rng, device) for _ in range(BATCH)]
            s3.put_object(
                Bucket=settings.data_bucket,
                Key=f"{CAPTURE_PREFIX}/edge-demo-fleet/{device}/{MODEL}/2026/12/07/10/{batch:05d}.jsonl",
                Body="\n".join(json.dumps(r) for r in records).encode(),
            )
    outcomes = [
        {"device": d, "status": "SUCCEEDED", "details": {"predictions": str(PER_DEVICE)}}
        for d in params()["device_names"]
    ]
    package = {
        "model_name": MODEL,
        "reference_uri": f"s3://{settings.artifacts_bucket}/bench/reference.json",
        "package_uri": f"s3://{settings.artifacts_bucket}/{PACKAGE_PREFIX}/{MODEL}/1.0.0/package.tar.gz",
        "size_bytes": 123456,
        "sha256": "0" * 64,
        "variant": "float32",
        "signing_algorithm": "RSASSA_PSS_SHA_256",
        "signing_key_arn": key_arn,
        "files": {"compiled.so": 1000, "reference.json": 500},
        "compiled": {
            "compiler": "tvm",
            "layout": "tvm",
            "runtime": "tvm",
            "sizes_bytes": {"compiled.so": 1000},
        },
        "prepared": {},
    }
    deployment = {
        "job_id": job_id,
        "job_status": "COMPLETED",
        "outcomes": outcomes,
        "succeeded": list(params()["device_names"]),
        "failed": [],
        "pending": [],
    }
    return {"package": package, "deployment": deployment, "fleet": fleet, "run_id": run_id}


def capture_record(rng, device: str) -> dict:
    def encode(array) -> dict:
        return {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode(),
        }

    frame = rng.integers(0, 255, size=(32, 32, 3), dtype="uint8")
    scores = rng.random(4).astype("float32")
    return {
        "device": device,
        "model": MODEL,
        "request_id": "r",
        "time": time.time(),
        "input": encode(frame),
        "output": encode(scores),
    }


def code_env(env: dict, code: Path) -> dict:
    return {
        **env,
        "PYTHONPATH": f"{code / 'plugins'}:{code}",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(code / "plugins"),
    }


def run_round(code: Path, s3, settings, env: dict, tmp: str, profile: str | None) -> dict[str, dict]:
    """ensure_fleet, the seed, then the other tasks, each task in a new process with `code`'s plugins."""
    from orchard.edge_deployment.fleet import signing_key

    run_id = f"{RUN_ID}-{len(list(Path(tmp).glob('state-*')))}"
    key_arn = signing_key("alias/orchard-edge-package-signing")
    state = {"run_id": run_id, "key_arn": key_arn, "drift_file": f"{tmp}/drift.json"}
    state["fleet_file"] = f"{tmp}/fleet.json"
    state_file = f"{tmp}/state-{run_id.rsplit('-', 1)[-1]}.json"
    Path(state_file).write_text(json.dumps(state))
    timed = {
        "ensure_fleet": child("ensure_fleet", state_file, code_env(env, code), profile == "ensure_fleet")
    }
    fleet = json.loads(Path(state["fleet_file"]).read_text())
    state |= seed(s3, settings, run_id, key_arn, fleet)
    Path(state_file).write_text(json.dumps(state, default=str))
    for task in TASKS[1:]:
        timed[task] = child(task, state_file, code_env(env, code), profile == task)
    return timed


def child(task: str, state_file: str, env: dict, profile: bool) -> dict:
    command = [sys.executable, __file__, "--child", task, "--state", state_file] + (
        ["--profile", task] if profile else []
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"{task}: {done.stderr[-3000:]}")
    if profile:
        print(done.stderr[-12000:], file=sys.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="added to every sandbox API call (50: a Region's round trip)",
    )
    parser.add_argument("--json")
    parser.add_argument("--profile", choices=TASKS)
    parser.add_argument("--before", help="another checkout whose plugins/ to time alongside, per round")
    parser.add_argument("--child", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        seconds, counts = run_task(args.child, json.loads(Path(args.state).read_text()), bool(args.profile))
        print(json.dumps({"seconds": seconds, **counts}))
        return
    import tempfile

    import boto3

    from benchmarks._bench_sandbox import start_sandbox
    from local_aws import aws_connection
    from local_aws.iam_setup import create_pipeline_roles
    from local_aws.stack.environment import STACK_TUNING
    from orchard.settings import load_settings

    sandbox, url = start_sandbox(args.latency_ms)
    try:
        role_arn = create_pipeline_roles(url, [DAG_ID])
        env = {
            **os.environ,
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(url, role_arn=role_arn),
            "AIRFLOW__AWS__SESSION_FACTORY": STACK_TUNING["AIRFLOW__AWS__SESSION_FACTORY"],
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        os.environ.update(env)
        settings = load_settings(variables=False)
        s3 = boto3.client("s3")
        for bucket in {settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket}:
            s3.create_bucket(Bucket=bucket)
        codes = {"after": REPO} | ({"before": Path(args.before).resolve()} if args.before else {})
        seconds: dict[str, dict[str, list[float]]] = {name: {t: [] for t in TASKS} for name in codes}
        requests: dict[str, dict[str, dict]] = {name: {} for name in codes}  # the same every round
        with tempfile.TemporaryDirectory(prefix="edge-task-time-") as tmp:
            for round_ in range(args.rounds):
                order = list(codes) if round_ % 2 == 0 else list(reversed(codes))
                for name in order:
                    profile = args.profile if round_ == args.rounds - 1 else None
                    for task, value in run_round(codes[name], s3, settings, env, tmp, profile).items():
                        seconds[name][task].append(value["seconds"])
                        requests[name][task] = {"sessions": value["sessions"], "calls": value["calls"]}
                for name in codes:
                    print(
                        f"round {round_ + 1} {name}: "
                        + ", ".join(f"{t} {s[-1]:.2f} s" for t, s in seconds[name].items())
                    )
        summary: dict = {"seconds": seconds, "median": {}, "requests": requests}
        for name in codes:
            print(
                f"AWS per task {name} (hook sessions, API calls): "
                + ", ".join(
                    f"{t} {r['sessions']}, {sum(r['calls'].values())}" for t, r in requests[name].items()
                )
            )
            summary["median"][name] = {t: statistics.median(s) for t, s in seconds[name].items()}
            print(
                f"median {name}: " + ", ".join(f"{t} {m:.2f} s" for t, m in summary["median"][name].items())
            )
        if args.before:
            summary["ratio_after_before"] = {
                t: statistics.median(a / b for a, b in zip(seconds["after"][t], seconds["before"][t]))
                for t in TASKS
            }
            print(
                "median of per-round ratios after/before: "
                + ", ".join(f"{t} {r:.2f}" for t, r in summary["ratio_after_before"].items())
            )
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=1))
    finally:
        sandbox.terminate()
        sandbox.wait()


PRELOADED = (
    "boto3",
    "airflow.sdk.definitions.decorators",
    "airflow.providers.amazon.aws.hooks.s3",
    "airflow.providers.amazon.aws.hooks.logs",
    "airflow.providers.amazon.aws.operators.sagemaker",
)

if __name__ == "__main__":
    main()
