"""e2e fixtures: Airflow's metadata DB, and a record of the triggers `dag.test()` runs in line."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def airflow_db():
    """Create the SQLite metadata DB of the test session's Airflow home, once."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture
def inline_triggers(monkeypatch):
    """Every (trigger, event) that `dag.test()` ran: proof that an operator deferred and resumed."""
    from airflow.sdk.definitions import dag as dag_module

    seen = []
    run_trigger = dag_module._run_inline_trigger

    def record(trigger, ti):
        event = run_trigger(trigger, ti)
        seen.append((trigger, event))
        return event

    monkeypatch.setattr(dag_module, "_run_inline_trigger", record)
    return seen


@pytest.fixture(autouse=True)
def pipeline_role(request, monkeypatch):
    """Every pipeline e2e test (tests/e2e/test_<dag_id>.py) runs Airflow under its DAG's role, holding
    exactly include/iam/<dag_id>.json, and its jobs under include/iam/<dag_id>_<kind>_role.json: the
    `aws_default` connection assumes that role (local_aws/iam_setup.py)."""
    from local_aws import aws_connection
    from local_aws.iam_setup import IAM_FOLDER, create_pipeline_roles

    dag_id = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    if not (IAM_FOLDER / f"{dag_id}.json").exists():
        return None
    aws = request.getfixturevalue("aws")  # a clean sandbox, then the roles
    role_arn = create_pipeline_roles(aws.url, [dag_id])
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws.url, role_arn=role_arn))
    return role_arn
