"""`make demo` / `python -m local_aws demo`: DAG discovery, the demo data registry, the report.

The fast tests run the demo command on folders with no DAG or an unknown id (no Airflow stack starts).
The e2e test runs the whole stack (sandbox + scheduler, dag-processor, triggerer, api-server) on two
small DAGs written to a temporary dags folder, as `make demo` does on dags/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

import local_aws
from local_aws import demo_data, stack
from local_aws.iam_setup import DEMO_AIRFLOW_ROLE_ARN

REPO_ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^demo: (\d+)/(\d+) runs succeeded in (\d+) s$")

HELLO_DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="hello_sandbox", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def hello_sandbox():
    @task
    def list_buckets(**context) -> list[str]:
        import boto3

        names = sorted(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"])
        assert "orchard-data" in names, names  # created by the demo in the sandbox, so boto3 talks to it
        context["ti"].xcom_push(key="report_uri", value="s3://orchard-artifacts/reports/hello/report.md")
        return names

    list_buckets()


hello_sandbox()
"""

FAILING_DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="always_fails", schedule="@daily", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def always_fails():
    @task
    def boom():
        raise RuntimeError("fails on purpose")

    boom()


always_fails()
"""


def clean_env(tmp_path: Path, dags: Path) -> dict[str, str]:
    """The environment a user's shell would give `make demo`: none of the test session's Airflow setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "ORCHARD_"))}
    env[stack.DAGS_FOLDER_ENV] = str(dags)
    env[stack.AIRFLOW_HOME_ENV] = str(tmp_path / "airflow-home")
    return env


def run_demo(tmp_path: Path, dags: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local_aws", "demo", *args],
        cwd=REPO_ROOT,
        env=clean_env(tmp_path, dags),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_dags(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


# ------------------------------------------------------------------------------------ no DAGs, unknown ids


def test_no_dags_says_so_and_exits_0_at_once(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "helpers.py").write_text("VALUE = 1\n")  # a python file that cannot hold a DAG

    result = run_demo(tmp_path, dags, timeout=30)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"demo: no DAGs in {dags}/ yet — nothing to run"
    assert SUMMARY.match(lines[-1]) and lines[-1].startswith("demo: 0/0 runs succeeded in ")
    assert not (tmp_path / "airflow-home").exists(), "nothing should start, not even an Airflow home"


def test_a_file_mentioning_airflow_but_defining_no_dag_is_no_dag(tmp_path):
    dags = write_dags(tmp_path / "dags", util="# airflow dag helpers, no DAG here\nX = 1\n")

    result = run_demo(tmp_path, dags, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "no DAGs in" in result.stdout
    assert SUMMARY.match(result.stdout.strip().splitlines()[-1])


def test_unknown_dag_id_fails_with_the_known_ids(tmp_path):
    dags = write_dags(tmp_path / "dags", hello_sandbox=HELLO_DAG, always_fails=FAILING_DAG)

    result = run_demo(tmp_path, dags, "--dags", "nope", "hello_sandbox", timeout=60)

    assert result.returncode == 2
    assert "unknown DAG id(s): nope" in result.stderr
    assert "known DAG ids: always_fails, hello_sandbox" in result.stderr
    assert not (tmp_path / "airflow-home" / "logs" / "stack").exists(), "no stack starts for a bad id"


def test_unknown_dag_id_with_no_dags_yet(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()

    result = run_demo(tmp_path, dags, "--dags", "pose_training", timeout=30)

    assert result.returncode == 2
    assert "unknown DAG id(s): pose_training" in result.stderr
    assert "known DAG ids: none (no DAGs in" in result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_make_demo_passes_DAGS_through(tmp_path):
    dags = write_dags(tmp_path / "dags", hello_sandbox=HELLO_DAG)
    env = clean_env(tmp_path, dags)
    env.pop("MAKEFLAGS", None)

    result = subprocess.run(
        # VENV_STAMP= : this test must not (re)install the venv; VENV_PY: the interpreter running the tests
        [
            "make",
            "-s",
            "-C",
            str(REPO_ROOT),
            "demo",
            "DAGS=unknown also_unknown",
            "VENV_STAMP=",
            f"VENV_PY={sys.executable}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "unknown DAG id(s): unknown, also_unknown" in result.stderr
    assert "known DAG ids: hello_sandbox" in result.stderr


def test_import_errors_are_reported_with_the_unknown_ids(tmp_path):
    dags = write_dags(
        tmp_path / "dags",
        hello_sandbox=HELLO_DAG,
        broken="from airflow.sdk import dag\nraise ImportError('no')\n",
    )

    found = stack.list_dags(dags, stack.airflow_env(tmp_path / "home", dags))

    assert list(found.dags) == ["hello_sandbox"]
    assert list(found.import_errors) == ["broken.py"]
    with pytest.raises(
        stack.StackError, match=r"(?s)unknown DAG id\(s\): broken.*failed to import: broken.py"
    ):
        stack.select_dags(found, ["broken"])


def test_select_dags():
    found = stack.DagFolder(Path("dags"), dags={"a": "a.py", "b": "b.py"})
    assert stack.select_dags(found, None) == ["a", "b"]
    assert stack.select_dags(found, ["b", "a", "b"]) == ["b", "a"]
    with pytest.raises(stack.StackError) as err:
        stack.select_dags(found, ["c"])
    assert err.value.exit_code == 2
    assert "known DAG ids: a, b" in str(err.value)


# ---------------------------------------------------------------------------------------- the report


def test_summary_line_format():
    assert stack.summary_line(2, 3, 41.6) == "demo: 2/3 runs succeeded in 42 s"
    assert stack.summary_line(0, 0, 0.01) == "demo: 0/0 runs succeeded in 0 s"
    assert SUMMARY.match(stack.summary_line(5, 5, 1234.4))


def test_table_lists_dag_state_duration_and_report():
    table = stack.format_table(
        [
            stack.RunResult(
                "pose_training", "demo__1", "success", 83.4, "s3://orchard-artifacts/reports/x.md"
            ),
            stack.RunResult("fruit_features", "demo__1", "failed", 12.0),
            stack.RunResult("auto_labeling"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["DAG", "state", "duration", "report"]
    assert lines[2].split() == ["pose_training", "success", "83", "s", "s3://orchard-artifacts/reports/x.md"]
    assert lines[3].split() == ["fruit_features", "failed", "12", "s", "-"]
    assert lines[4].split() == ["auto_labeling", "not", "started", "-", "-"]


def test_aws_connection_points_at_the_sandbox_with_retries():
    conn = json.loads(local_aws.aws_connection("http://127.0.0.1:4566"))
    assert conn["conn_type"] == "aws"
    assert conn["extra"] == {
        "endpoint_url": "http://127.0.0.1:4566",
        "region_name": "us-east-1",
        "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10}},
    }
    env = stack.airflow_env(Path("/tmp/h"), Path("/tmp/d"), sandbox_url="http://127.0.0.1:4566")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    # Airflow runs under the demo's role, holding every selected pipeline's policy (local_aws/iam_setup.py)
    assert env["AIRFLOW_CONN_AWS_DEFAULT"] == local_aws.aws_connection(
        "http://127.0.0.1:4566", role_arn=DEMO_AIRFLOW_ROLE_ARN
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/tmp/d"


# ---------------------------------------------------------------------------------- demo data registry

FAKE_MODULE = """
def upload(s3_client, settings):
    s3_client.put_object(Bucket=settings.data_bucket, Key="fake_pipeline/input.csv", Body=b"a,b\\n1,2\\n")
    return {"input_uri": f"s3://{settings.data_bucket}/fake_pipeline/input.csv", "count": 1}
"""


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """demo_data with one module, fake_pipeline.py, in place of the real ones."""
    folder = tmp_path / "demo_data"
    folder.mkdir()
    (folder / "fake_pipeline.py").write_text(FAKE_MODULE)
    (folder / "_helpers.py").write_text("X = 1\n")  # private: not a DAG's data
    (folder / "not_a_dict.py").write_text("def upload(s3_client, settings):\n    return ['x']\n")
    monkeypatch.setattr(demo_data, "__path__", [str(folder)])
    yield folder
    for name in [m for m in sys.modules if m.startswith(f"{demo_data.__name__}.")]:
        del sys.modules[name]


def test_discover_finds_each_module_by_dag_id(fake_registry):
    assert demo_data.module_names() == ["fake_pipeline", "not_a_dict"]
    found = demo_data.discover()
    assert sorted(found) == ["fake_pipeline", "not_a_dict"]
    assert all(callable(upload) for upload in found.values())


def test_a_module_without_upload_is_an_error(fake_registry):
    (fake_registry / "no_upload.py").write_text("X = 1\n")
    with pytest.raises(TypeError, match="no_upload must define upload"):
        demo_data.discover()


def test_upload_all_uploads_through_the_sandbox_and_returns_confs(aws):
    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]))
    s3 = demo.s3_client()
    settings = stack.load_settings()
    for bucket in stack.bucket_names(settings):
        s3.create_bucket(Bucket=bucket)

    confs = demo_data.upload_all(s3, ["pipeline_without_data"], settings)

    assert confs == {"pipeline_without_data": {}}


def test_seed_creates_the_buckets_and_uploads_each_dags_data(aws, fake_registry):
    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]))

    confs = demo.seed(["fake_pipeline", "no_data_for_me"])

    assert confs == {
        "fake_pipeline": {"input_uri": "s3://orchard-data/fake_pipeline/input.csv", "count": 1},
        "no_data_for_me": {},
    }
    s3 = demo.s3_client()
    assert {"orchard-data", "orchard-artifacts"} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert s3.get_object(Bucket="orchard-data", Key="fake_pipeline/input.csv")["Body"].read() == b"a,b\n1,2\n"
    # the deploy step ran against the sandbox: the job code is where the DAGs look for it
    from orchard import job_code
    from orchard.settings import Settings

    for name in job_code.PACKAGES:
        assert job_code.check_deployed(s3, Settings(), name)["package"] == name


def test_airflow_processes_see_only_what_a_deployment_ships(tmp_path, monkeypatch):
    """docker-compose and MWAA put dags/ and plugins/ on sys.path, not the repository: neither does the
    stack, even with the repository on PYTHONPATH and as the working directory."""
    monkeypatch.setenv("PYTHONPATH", f"{stack.REPO_ROOT}{os.pathsep}{stack.REPO_ROOT}/")
    env = stack.airflow_env(tmp_path / "home", stack.REPO_ROOT / "dags")
    assert env["PYTHONSAFEPATH"] == "1" and str(stack.REPO_ROOT) not in env["PYTHONPATH"]
    probe = (
        "import importlib.util as u, json\n"
        "before = {n: u.find_spec(n) is not None for n in ('include', 'local_aws', 'deploy', 'orchard')}\n"
        "import airflow.settings\n"  # Airflow puts its plugins folder on sys.path, as in a deployment
        "after = [u.find_spec(n) is not None for n in ('orchard', 'include')]\n"
        "print(json.dumps([before, *after]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=stack.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, orchard_after, include_after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before == {"include": False, "local_aws": False, "deploy": False, "orchard": False}
    assert orchard_after and not include_after


def test_upload_all_rejects_a_conf_that_is_not_a_dict(aws, fake_registry):
    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]))
    with pytest.raises(TypeError, match="not_a_dict.upload returned list"):
        demo.seed(["not_a_dict"])


def test_seed_reports_a_failing_module_and_uploads_the_others(aws, fake_registry):
    (fake_registry / "broken_data.py").write_text(
        "def upload(s3_client, settings):\n    raise ValueError('nope')\n"
    )
    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]))
    failures: dict[str, str] = {}

    confs = demo.seed(["broken_data", "fake_pipeline"], failures=failures)

    assert list(confs) == ["fake_pipeline"]
    assert list(failures) == ["broken_data"]
    assert "ValueError: nope" in failures["broken_data"]


def test_every_demo_data_module_is_named_after_a_dag_in_dags():
    modules = demo_data.module_names()
    if not modules:
        pytest.skip("no pipeline has registered demo data yet")
    found = stack.list_dags(
        stack.REPO_ROOT / "dags",
        stack.airflow_env(Path(os.environ["AIRFLOW_HOME"]), stack.REPO_ROOT / "dags"),
    )
    assert sorted(set(modules) - set(found.dags)) == [], (
        f"demo data for unknown DAG ids; DAGs: {list(found.dags)}"
    )


@pytest.mark.parametrize("dag_id", demo_data.module_names())
def test_each_pipelines_demo_data_uploads_to_the_sandbox(aws, dag_id):
    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]))
    conf = demo.seed([dag_id])[dag_id]
    assert isinstance(conf, dict)
    json.dumps(conf)


# ----------------------------------------------------------------------------------------- full stack


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_demo_runs_the_dags_on_the_local_stack_and_reports(tmp_path):
    dags = write_dags(tmp_path / "dags", hello_sandbox=HELLO_DAG, always_fails=FAILING_DAG)

    result = run_demo(tmp_path, dags, "--sandbox-port", "0", "--port", "0", "--timeout", "240", timeout=290)

    out = result.stdout
    assert result.returncode == 1, out + result.stderr  # one of the two runs fails
    lines = out.strip().splitlines()
    assert lines[-1].startswith("demo: 1/2 runs succeeded in "), out
    assert SUMMARY.match(lines[-1])
    rows = {
        line.split()[0]: line.split()
        for line in lines
        if line.startswith(("hello_sandbox ", "always_fails "))
    }
    assert rows["hello_sandbox"][1] == "success", out
    assert rows["hello_sandbox"][-1] == "s3://orchard-artifacts/reports/hello/report.md", out
    assert rows["always_fails"][1] == "failed", out
    assert rows["always_fails"][-1] == "-", out
    assert "always_fails: failed task(s) boom" in out
    # everything it started is gone: its ports are free again
    ports = [int(p) for p in re.findall(r"up on http://(?:127\.0\.0\.1|localhost):(\d+)", out)]
    assert len(ports) == 2, out
    assert all(stack.port_is_free(port) for port in ports)
    # the execution API's cold start was paid by the stack's own request, not by the first task's `run`
    api_log = (tmp_path / "airflow-home" / "logs" / "stack" / "api-server.log").read_text()
    execution_calls = re.findall(r"method=(\w+) path=(/execution/\S*)", api_log)
    assert execution_calls[0] == ("GET", "/execution/health"), execution_calls[:3]
    assert any(path.endswith("/run") for _, path in execution_calls[1:])


# A task of the local stack (a forkserver worker's child, the demo's role_arn connection): its hooks' sessions,
# the role's included, read botocore's data through one loader (orchard.aws_session, STACK_TUNING).
HOOKS_DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="hooks_share_loader", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def hooks_share_loader():
    @task
    def two_hooks(**context) -> str:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        sessions = [AwsBaseHook(aws_conn_id="aws_default", client_type=s).get_session() for s in ("s3", "sts")]
        loaders = {id(session._session.get_component("data_loader")) for session in sessions}
        assert len(loaders) == 1, loaders
        arn = sessions[1].client("sts").get_caller_identity()["Arn"]
        assert ":assumed-role/orchard-airflow-demo/" in arn, arn
        context["ti"].xcom_push(key="report_uri", value="s3://orchard-artifacts/reports/hooks/report.md")
        return arn

    two_hooks()


hooks_share_loader()
"""


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_stack_tasks_hooks_share_one_botocore_loader_and_run_as_the_demo_role(tmp_path):
    dags = write_dags(tmp_path / "dags", hooks_share_loader=HOOKS_DAG)

    result = run_demo(tmp_path, dags, "--sandbox-port", "0", "--port", "0", "--timeout", "240", timeout=290)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("demo: 1/1 runs succeeded in "), result.stdout


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_up_serves_the_ui_until_ctrl_c_then_stops_everything(tmp_path):
    dags = write_dags(tmp_path / "dags", hello_sandbox=HELLO_DAG)
    port = stack.pick_port(0)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "up", "--port", str(port), "--sandbox-port", "0"],
        cwd=REPO_ROOT,
        env=clean_env(tmp_path, dags),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        out = "".join(lines)
        assert f"up: Airflow UI   http://localhost:{port}" in out, out
        password = json.loads(
            (tmp_path / "airflow-home" / "simple_auth_manager_passwords.json.generated").read_text()
        )
        assert f"up: log in as    admin / {password['admin']}" in out
        assert "up: DAGs         hello_sandbox" in out

        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).status == 200
        login = urllib.request.Request(
            f"http://127.0.0.1:{port}/auth/token",
            data=json.dumps({"username": "admin", "password": password["admin"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.loads(urllib.request.urlopen(login, timeout=30).read())["access_token"]
        dags_request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}
        )
        deadline = time.monotonic() + 60
        while True:  # the dag-processor stores the DAG shortly after start
            listed = [
                d["dag_id"]
                for d in json.loads(urllib.request.urlopen(dags_request, timeout=30).read())["dags"]
            ]
            if listed or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert listed == ["hello_sandbox"]
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=90)
    assert process.returncode == 0, rest
    assert "up: stopping" in rest and "stack: stopped" in rest
    sandbox_port = int(re.search(r"sandbox up on http://127\.0\.0\.1:(\d+)", out).group(1))
    assert stack.port_is_free(port) and stack.port_is_free(sandbox_port)


def test_seed_with_skip_upload_creates_roles_and_buckets_but_uploads_nothing(aws, fake_registry):
    """`make up` with schedules off: an upload that starts a run would be consumed into a run that never
    starts, so those DAGs' demo data is not uploaded (their roles and buckets are)."""
    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]))

    confs = demo.seed(["fake_pipeline"], skip_upload=["fake_pipeline"])

    assert confs == {}
    settings = stack.load_settings()
    s3 = demo.s3_client()
    assert s3.head_bucket(Bucket=settings.data_bucket)
    assert s3.list_objects_v2(Bucket=settings.data_bucket).get("KeyCount") == 0
