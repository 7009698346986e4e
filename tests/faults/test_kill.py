"""Kill tests on the local stack (local_aws/stack.py: the sandbox and Airflow's scheduler, dag-processor,
triggerer and api-server as processes, as `make up` runs them): the triggerer killed while a job waits, the
task process SIGKILLed / SIGTERMed while it submits, the sandbox restarted mid-run. The pipeline:
edge_deployment on tiny data (its compile task submits a Neo job and defers on it). What each must show:
one paid job per run (no retry starts the work over), a clear end state, nothing billable left.
Marked `faults`: `make faults` runs them (each starts its own stack; minutes each)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.pipelines import settled_inventory

pytestmark = pytest.mark.faults

DAG_ID, TASK = "edge_deployment", "compile"
RUN_TIMEOUT_S = float(os.environ.get("ORCHARD_FAULTS_KILL_TIMEOUT", "600"))


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Iterator[object]:
    """A fresh local stack with edge_deployment's roles, buckets, job code and tiny demo data."""
    import local_aws
    from local_aws import stack as stack_module
    from local_aws.demo_data import edge_deployment as demo
    from local_aws.iam_setup import DEMO_AIRFLOW_ROLE, create_pipeline_roles, settings_buckets
    from local_aws.stack import processes

    running = stack_module.Stack(
        home=tmp_path / "airflow",
        sandbox_port=stack_module.pick_port(0),
        api_port=stack_module.pick_port(0),
        fresh_db=True,
        say=lambda *_: None,
    )
    try:
        running.start()
        with processes._environ(local_aws.client_env(running.sandbox_url)):
            settings = stack_module.load_settings()
        running.settings = settings
        prepare = _preparer(
            running, settings, demo, create_pipeline_roles, DEMO_AIRFLOW_ROLE, settings_buckets
        )
        running.prepare = prepare
        running.conf = prepare()
        yield running
    finally:
        running.stop()


def _preparer(running, settings, demo, create_pipeline_roles, role, settings_buckets):
    from local_aws import stack as stack_module

    def prepare() -> dict:
        create_pipeline_roles(
            running.sandbox_url, [DAG_ID], airflow_role=role, buckets=settings_buckets(settings)
        )
        s3 = running.s3_client()
        for bucket in stack_module.bucket_names(settings):
            try:
                s3.create_bucket(Bucket=bucket)
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
        stack_module.deploy_job_code(s3, settings)
        conf = demo.upload(s3, settings, per_device=2, calibration=4)
        return {
            **conf,
            "poll_seconds": 1,
            "capture_batch_size": 2,
            "capture_push_period_seconds": 1,
            "delete_fleet": True,
        }

    return prepare


def _client(stack):
    import local_aws

    return lambda service: local_aws.sandbox_client(service, stack.sandbox_url)


def _trigger(stack) -> str:
    from local_aws import stack as stack_module

    deadline = time.monotonic() + 300
    while True:  # the dag-processor's first parse
        try:
            stack.api("GET", f"/dags/{DAG_ID}")
            break
        except stack_module.StackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)

    [result] = stack_module.trigger(stack, [DAG_ID], {DAG_ID: stack.conf}, say=lambda *_: None).values()
    return result.run_id


def _task(stack, run_id: str, task_id: str = TASK) -> dict:
    tis = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return next((ti for ti in tis if ti["task_id"] == task_id), {})


def _wait_task(stack, run_id: str, states: set[str], timeout_s: float = 300, poll_s: float = 0.2) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ti = _task(stack, run_id)
        if ti.get("state") in states:
            return ti
        time.sleep(poll_s)
    raise AssertionError(f"{TASK} never reached {states} in {timeout_s:.0f} s (last: {ti.get('state')})")


def _wait_run(stack, run_id: str, timeout_s: float = RUN_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        state = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    return f"still {state} after {timeout_s:.0f} s"


def _task_process(ti_id: str, timeout_s: float = 10.0) -> int:
    """The pid of the process running task instance `ti_id` (titled `airflow worker -- <id>`).

    The supervisor marks the task running before its process has its startup message and sets that title,
    so the title can lag the state seen through the API: look again until it shows."""
    title = f"airflow worker -- {ti_id}".encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if title in (proc / "cmdline").read_bytes().replace(b"\0", b" "):
                    return int(proc.name)
            except OSError:
                continue
        time.sleep(0.01)
    raise AssertionError(f"no task process for task instance {ti_id} within {timeout_s:.0f} s")


def _compilation_jobs(stack) -> list[dict]:
    return _client(stack)("sagemaker").list_compilation_jobs()["CompilationJobSummaries"]


def _respawn(stack, name: str, argv: list[str]) -> None:
    [old] = [c for c in stack.children if c.name == name]
    os.killpg(old.process.pid, signal.SIGKILL)
    old.process.wait(timeout=30)
    stack.children.remove(old)
    time.sleep(2)
    stack._spawn(name, argv, stack.env(), cwd=stack.home)


def test_triggerer_killed_while_a_job_waits(stack):
    run_id = _trigger(stack)
    _wait_task(stack, run_id, {"deferred"})

    from local_aws.stack.processes import airflow_command

    _respawn(stack, "triggerer", airflow_command("triggerer"))  # as the stack started it
    state = _wait_run(stack, run_id)

    assert state == "success", f"after the triggerer was killed while {TASK} waited, the run is {state}"
    assert len(_compilation_jobs(stack)) == 1, _compilation_jobs(stack)
    assert settled_inventory(client=_client(stack)) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_task_process_killed_while_it_submits(stack, sig):
    run_id = _trigger(stack)
    ti = _wait_task(stack, run_id, {"running"}, poll_s=0.05)

    os.kill(_task_process(ti["id"]), sig)
    state = _wait_run(stack, run_id)

    jobs = _compilation_jobs(stack)
    assert len(jobs) <= 1, f"the retry after {sig.name} submitted the paid job again: {jobs}"
    assert state in ("success", "failed"), state
    assert settled_inventory(client=_client(stack)) == []


def test_sandbox_restarted_mid_run_fails_fast_naming_the_vanished_job(stack):
    """After a restart the sandbox (like an AWS account that lost the job) no longer knows the job the
    run waits on: the wait must fail within a few polls, not poll for hours."""
    run_id = _trigger(stack)
    _wait_task(stack, run_id, {"deferred"})

    [old] = [c for c in stack.children if c.name == "sandbox"]
    os.killpg(old.process.pid, signal.SIGTERM)
    old.process.wait(timeout=30)
    stack.children.remove(old)
    stack.start_sandbox()
    stack.prepare()  # the account's roles and buckets again, not the job
    started = time.monotonic()
    state = _wait_run(stack, run_id, timeout_s=min(RUN_TIMEOUT_S, 300))

    assert state == "failed", f"the run waiting on a job the sandbox no longer knows is {state}"
    assert time.monotonic() - started < 300
    assert _task(stack, run_id)["state"] in ("failed", "upstream_failed")
    assert settled_inventory(client=_client(stack)) == []
