"""Session-wide test setup: an Airflow home of its own, before anything imports airflow."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The fault harness's table, one across xdist workers, and `make test`'s scheduling of its CI cells over the
# workers: their hooks must run in the xdist controller, which loads only this conftest.
pytest_plugins = ["tests.faults.report", "tests.faults.scheduling"]

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="orchard-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
# Two DAG bundles: the pipelines, and the small DAGs the e2e harness tests run (`dag.test()` syncs
# the bundle that holds the DAG under test).
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {"name": "dags-folder", "classpath": _LOCAL_BUNDLE, "kwargs": {}},
        {
            "name": "e2e-test-dags",
            "classpath": _LOCAL_BUNDLE,
            "kwargs": {"path": str(REPO_ROOT / "tests" / "e2e" / "dags")},
        },
    ]
)

# Small job folders that exercise the sandbox (the pipelines' own code lives in include/).
TEST_JOB_ROOT = REPO_ROOT / "tests" / "local_aws" / "jobs"
os.environ["ORCHARD_JOB_ROOTS"] = str(TEST_JOB_ROOT)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """The local AWS sandbox, started once per test session; boto3 and Airflow point at it."""
    from local_aws import aws_connection, client_env
    from local_aws.server import Sandbox
    from local_aws.stack import pick_port

    running = Sandbox(port=pick_port(0)).start()
    with pytest.MonkeyPatch.context() as env:
        for name, value in client_env(running.url).items():
            env.setenv(name, value)
        env.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(running.url))
        yield running
    running.stop()


@pytest.fixture
def aws(sandbox):
    """A clean sandbox for this test: every resource and running job of earlier tests is gone."""
    sandbox.reset()
    return sandbox


@pytest.fixture
def in_process_moto(monkeypatch):
    """Tests that use moto in-process (`mock_aws`), not the session's sandbox: without AWS_ENDPOINT_URL,
    whose sandbox would get mock_aws's fake key and refuse it (the sandbox enforces IAM), and without the
    session's `aws_default` connection, whose endpoint is the sandbox's (hooks would call it too)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)


# `make test` runs in two parts: the tests in parallel (pytest-xdist, one file per worker), then, alone, the
# tests marked `serial` (they measure wall time or CPU, or race a tight deadline). The `faults_ci` sample runs
# in the parallel part: its table is rendered by the controller from every worker's records
# (tests/faults/report.py).
def pytest_addoption(parser):
    group = parser.getgroup("orchard")
    group.addoption(
        "--skip-serial", action="store_true", help="leave out the serial tests (make test, part 1)"
    )
    group.addoption(
        "--only-serial", action="store_true", help="run only the serial tests (make test, part 2)"
    )


def _runs_alone(item) -> bool:
    return item.get_closest_marker("serial") is not None


def pytest_collection_modifyitems(config, items):
    skip, only = config.getoption("--skip-serial"), config.getoption("--only-serial")
    if not (skip or only):
        return
    keep = [item for item in items if _runs_alone(item) == only]
    dropped = [item for item in items if _runs_alone(item) != only]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
