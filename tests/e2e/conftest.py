"""e2e fixtures: Airflow's metadata DB, a record of the triggers `dag.test()` runs in line, the deploy step
on each clean sandbox, and the deployed-layout guard around every `dag.test()` (tests/e2e/layout_guard.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.layout_guard import LayoutGuard


def pytest_configure(config):
    # `make faults` runs these extra e2e variants; registered here too so --strict-markers accepts them
    # wherever pyproject does not list it yet.
    config.addinivalue_line("markers", "faults: fault-injection and extra e2e variants (make faults, not CI)")


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


@pytest.fixture
def aws(aws):
    """A clean sandbox with the release's job code deployed, as `make deploy` does on AWS (and the local
    stack after creating its buckets): the DAGs find it at the URIs `orchard.job_code` derives."""
    import contextlib

    import boto3

    from deploy.job_code import deploy
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    s3 = boto3.client("s3", region_name=settings.region)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=settings.artifacts_bucket)
    deploy(bucket=settings.artifacts_bucket, image_tag=settings.image_tag, s3=s3)
    return aws


@pytest.fixture(autouse=True)
def deployed_layout_guard(monkeypatch):
    """Every `dag.test()` runs under the layout guard; any violation fails the test, even a swallowed one."""
    from airflow.sdk.definitions.dag import DAG

    original = DAG.test

    def guarded_test(self, *args, **kwargs):
        with LayoutGuard() as guard:
            result = original(self, *args, **kwargs)
        if guard.violations:
            pytest.fail(guard.report(), pytrace=False)
        return result

    monkeypatch.setattr(DAG, "test", guarded_test)


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
