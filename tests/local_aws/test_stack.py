"""The local stack's own contracts: it owns its ports (issue 14.4), `make up` runs in the background with
`make stop` / `make logs` (issue 16.6), and the prerequisites are checked first, naming what to install."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from local_aws import stack
from local_aws.stack import prereqs

REPO_ROOT = Path(__file__).resolve().parents[2]

HELLO_DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="hello_stack", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def hello_stack():
    @task
    def hello() -> str:
        return "hello"

    hello()


hello_stack()
"""


@pytest.fixture
def busy_port():
    """A port something else listens on (not a sandbox, not Airflow)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def clean_env(tmp_path: Path, dags: Path | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "ORCHARD_", "SANDBOX_"))
    }
    if dags is not None:
        env[stack.DAGS_FOLDER_ENV] = str(dags)
    env[stack.AIRFLOW_HOME_ENV] = str(tmp_path / "airflow-home")
    return env


def local_aws_cli(tmp_path, *args, dags=None, timeout=120, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local_aws", *args],
        cwd=REPO_ROOT,
        env={**clean_env(tmp_path, dags), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def hello_dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "hello_stack.py").write_text(textwrap.dedent(HELLO_DAG))
    return folder


# ---------------------------------------------------------------------------------------------- ports


def test_a_port_in_use_is_an_error_naming_it_and_the_fix(busy_port):
    with pytest.raises(stack.StackError) as err:
        stack.claim_stack_ports("demo", busy_port, 0)
    message = str(err.value)
    assert f"port {busy_port} (the local AWS sandbox) is in use" in message
    assert "something else listens there" in message
    assert "SANDBOX_PORT=" in message and "SANDBOX_ATTACH=1" in message

    api = rf"port {busy_port} \(the Airflow api-server / web UI\)(?s:.*)make up PORT=8081"
    with pytest.raises(stack.StackError, match=api):
        stack.claim_stack_ports("up", 0, busy_port)


def test_port_0_means_any_free_port():
    sandbox_port, api_port = stack.claim_stack_ports("demo", 0, 0)
    assert sandbox_port and api_port and stack.port_is_free(sandbox_port) and stack.port_is_free(api_port)


def test_a_sandbox_on_the_port_is_named_and_can_be_attached_to(aws):
    port = int(aws.url.rsplit(":", 1)[1])
    with pytest.raises(stack.StackError, match=r"a local AWS sandbox \(moto\) answers there"):
        stack.claim_stack_ports("demo", port, 0)

    sandbox_port, api_port = stack.claim_stack_ports("demo", port, 0, attach=True)

    assert sandbox_port == port and stack.port_is_free(api_port)
    attached = stack.Stack(sandbox_port=port, attach_sandbox=True, say=lambda _: None)
    attached.start_sandbox()
    assert attached.children == []  # not started here, so never stopped here


def test_attach_with_no_sandbox_running_fails_naming_the_fix(tmp_path):
    port = stack.pick_port(0)
    attached = stack.Stack(home=tmp_path, sandbox_port=port, attach_sandbox=True, say=lambda _: None)
    with pytest.raises(stack.StackError, match=rf"SANDBOX_ATTACH=1 but no sandbox answers on .*:{port}"):
        attached.start_sandbox()
    with pytest.raises(stack.StackError, match="needs the running sandbox's port"):
        stack.claim_stack_ports("demo", 0, 0, attach=True)


def test_make_demo_on_a_taken_sandbox_port_fails_before_starting_anything(tmp_path, busy_port):
    dags = hello_dags(tmp_path)

    result = local_aws_cli(tmp_path, "demo", "--sandbox-port", str(busy_port), "--port", "0", dags=dags)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {busy_port} (the local AWS sandbox) is in use" in result.stderr
    assert not (tmp_path / "airflow-home" / "logs" / "stack").exists(), "no process may start"


def test_the_sandbox_refuses_a_taken_port_instead_of_hanging(tmp_path, busy_port):
    result = local_aws_cli(tmp_path, "serve", "--port", str(busy_port), timeout=60)

    assert result.returncode == 1
    assert f"port {busy_port} is in use" in result.stderr


# ------------------------------------------------------------------------------------- prerequisites


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no version here", None),
    ],
)
def test_java_major_reads_java_version_output(output, major):
    assert prereqs.java_major(output) == major


def test_a_wrong_python_names_the_install():
    check = prereqs.check_python((3, 12))
    assert not check.ok and "Python 3.12" in check.detail and "python3.11" in check.fix


def test_too_little_disk_names_the_cache_and_the_way_out():
    check = prereqs.check_disk(min_free_gib=10**9)
    assert not check.ok and "ORCHARD_ENV_CACHE" in check.fix and "GiB free" in check.detail


def test_prereqs_command_names_what_is_missing(tmp_path):
    result = local_aws_cli(tmp_path, "prereqs", JAVA_HOME=str(tmp_path / "no-java"), timeout=60)

    assert result.returncode == 1
    assert "MISSING Java 17" in result.stdout and "openjdk-17-jre-headless" in result.stdout
    assert "1 missing" in result.stdout

    ok = local_aws_cli(tmp_path, "prereqs", timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("prerequisites: ok"), ok.stdout


# ------------------------------------------------------------------------------- make up in background


def running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie whose parent has not reaped it yet has finished)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_stop_with_nothing_running_says_so(tmp_path):
    result = local_aws_cli(tmp_path, "stop", timeout=60)
    assert result.returncode == 0 and "no stack runs in the background" in result.stdout


@pytest.mark.e2e
@pytest.mark.timeout(400)
def test_up_detached_returns_when_ready_and_stop_stops_everything(tmp_path):
    dags = hello_dags(tmp_path)
    home = tmp_path / "airflow-home"

    started = local_aws_cli(
        tmp_path, "up", "--detach", "--port", "0", "--sandbox-port", "0", dags=dags, timeout=360
    )
    try:
        out = started.stdout
        assert started.returncode == 0, out + started.stderr
        assert "up: DAGs         hello_stack" in out and "`make stop` stops everything." in out
        assert "running in the background" in out
        pid = int((home / "up.pid").read_text())
        os.kill(pid, 0)  # alive after the command returned
        ports = [int(p) for p in re.findall(r"up on http://(?:127\.0\.0\.1|localhost):(\d+)", out)]
        assert len(ports) == 2 and not any(stack.port_is_free(p) for p in ports), out

        again = local_aws_cli(tmp_path, "up", "--detach", "--port", "0", "--sandbox-port", "0", dags=dags)
        assert again.returncode == 1 and f"already runs in the background (pid {pid}" in again.stderr
    finally:
        stopped = local_aws_cli(tmp_path, "stop", timeout=150)
    assert stopped.returncode == 0 and f"stopped the stack (pid {pid})" in stopped.stdout, stopped.stdout
    assert not (home / "up.pid").exists()
    assert not running(pid)
    assert all(stack.port_is_free(p) for p in ports)
    assert "up: stopping" in (home / "logs" / "stack" / "up.log").read_text()


# ------------------------------------------------------------------------------------- CeleryExecutor


def test_celery_env_points_every_airflow_process_at_the_broker(tmp_path):
    env = stack.airflow_env(
        tmp_path, tmp_path / "dags", celery_broker_url="redis://127.0.0.1:6390/0", celery_workers=2
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6390/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+sqlite:///{tmp_path / 'celery-results.db'}"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "4"  # the stack's parallelism 8, shared
    assert stack.airflow_env(tmp_path, tmp_path / "dags")["AIRFLOW__CORE__EXECUTOR"] == stack.LOCAL_EXECUTOR


def test_celery_without_redis_server_names_the_package(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    demo = stack.Stack(home=tmp_path, celery_workers=2, say=lambda _: None)
    with pytest.raises(stack.StackError, match="apt-get install redis-server"):
        demo.start_redis()


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_make_demo_passes_the_executor_and_workers_through():
    dry = subprocess.run(
        ["make", "-n", "-C", str(REPO_ROOT), "demo", "EXECUTOR=celery", "WORKERS=3", "VENV_STAMP=", "PORT=0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "--executor celery --workers 3" in dry.stdout and "--port 0" in dry.stdout, dry.stdout
    local = subprocess.run(
        ["make", "-n", "-C", str(REPO_ROOT), "demo", "VENV_STAMP="],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "--executor" not in local.stdout and "--port 8080" in local.stdout


# A line of `airflow celery worker`'s log (provider 3.26.0, make demo EXECUTOR=celery, 2026-12-06), cut short
CELERY_WORKLOAD_LINE = (
    "2026-12-06T21:38:22.505002Z [info     ] [99e632ed-c2b6-474c-ace0-a4a2036ec106] Executing workload in"
    " Celery: dag_rel_path=PurePosixPath('edge_deployment.py') bundle_info=BundleInfo(name='dags-folder',"
    " version=None) log_path='dag_id=edge_deployment/run_id=demo__20261206T213817/task_id=validate_model/"
    "attempt=1.log' ti=TaskInstanceDTO(id=UUID('01a24d4b-1b3b-75f2-96ef-514dfd223441'), task_id='validate"
    "_model', dag_id='edge_deployment', run_id='demo__20261206T213817', try_number=1, dag_version_id=UUID"
    "('01a24d4a-19a3-7e18-9a5c-2f4bc42b034e'), map_index=-1, hostname='', context_carrier={'traceparent':"
    " '00-36d374bd41d819fb15549daf207e4f5a-9c3f041304a38085-00'}, queue='default', pool_slots=1, priority"
    "_weight=9, external_executor_id=None, executor_config=None) sentry_integration='sentry_sdk.integrati"
    "ons.celery.CeleryIntegration' type='ExecuteTask' [airflow.providers.celery.executors.celery_executor"
)


def test_celery_spread_reads_the_tasks_each_worker_ran():
    log = f"noise\n{CELERY_WORKLOAD_LINE}\nmore noise\n"
    assert stack.celery_workloads(log) == ["edge_deployment.validate_model"]
    assert stack.celery_workloads("no workloads here") == []


# ------------------------------------------------------------------------------------- task start (17.1)

# Run with the stack's environment: what the scheduler's forkserver preloads, then what a task process
# still imports when it loads the plugins and parses each DAG file (task_runner.startup / parse).
PRELOAD_PROBE = """
import importlib, json, os, sys
from pathlib import Path

missing = []
for name in os.environ["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"].split(","):
    try:
        importlib.import_module(name)
    except ImportError as error:  # multiprocessing skips such a module without a word
        missing.append(f"{name}: {error}")

from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk.listener import get_listener_manager

before = set(sys.modules)
get_listener_manager()
dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
for path in sorted(dags.glob("*.py")):
    bag = BundleDagBag(dag_folder=str(path), safe_mode=False, load_op_links=False, bundle_path=str(dags),
                       bundle_name="dags-folder")
    assert bag.dags and not bag.import_errors, (path, bag.import_errors)
heavy = ("boto3", "botocore", "s3transfer", "fastapi", "starlette", "airflow")
imported = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy)
print(json.dumps({"missing": missing, "imported_by_each_task": imported}))
"""


def test_task_processes_inherit_the_modules_their_dag_files_and_plugins_import(tmp_path):
    """The scheduler's LocalExecutor workers start from a forkserver that imported what every task process
    needs before its operator runs (boto3, the providers' operators, the UI plugin's imports), so a task
    no longer imports them again; a preload name that does not import is skipped silently by
    multiprocessing, hence checked here, as is a DAG that starts using a provider module not preloaded."""
    env = stack.airflow_env(tmp_path, REPO_ROOT / "dags")
    env["ORCHARD_PARAM_DEFAULTS"] = ""
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    probe = subprocess.run(
        [sys.executable, "-c", PRELOAD_PROBE], env=env, capture_output=True, text=True, timeout=600
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found == {"missing": [], "imported_by_each_task": []}


# ---------------------------------------------------------------------------------------------- triggerer


def test_the_stacks_triggerer_builds_its_execution_api_before_any_trigger(monkeypatch):
    """The stack's triggerer command makes one request through its supervisor's client as the supervisor
    starts (so the in-process API is built then, not on a trigger's first request), then runs `airflow
    triggerer` (docs/architecture.md, "A warm triggerer")."""
    import types

    import airflow.__main__ as airflow_main
    from airflow.jobs import triggerer_job_runner as runner

    from local_aws.stack.processes import airflow_command

    asked: list[tuple[str, str]] = []

    class DagRuns:
        def get_state(self, dag_id: str, run_id: str):
            asked.append((dag_id, run_id))
            raise RuntimeError("no such run")  # the answer does not matter, the built API does

    supervisor = types.SimpleNamespace(client=types.SimpleNamespace(dag_runs=DagRuns()))
    monkeypatch.setattr(runner.TriggerRunnerSupervisor, "start", classmethod(lambda cls, **kw: supervisor))
    started: list[object] = []
    monkeypatch.setattr(
        airflow_main, "main", lambda: started.append(runner.TriggerRunnerSupervisor.start(job=None))
    )
    monkeypatch.setattr(sys, "argv", ["-c"])
    argv = airflow_command("triggerer")

    assert argv[:2] == [sys.executable, "-c"]
    with pytest.raises(SystemExit) as exit_:
        exec(argv[2], {"__name__": "__main__"})

    assert exit_.value.code is None and sys.argv == ["airflow", "triggerer"]
    assert started == [supervisor] and asked == [("-", "-")]
    assert airflow_command("scheduler") == [sys.executable, "-m", "airflow", "scheduler"]
