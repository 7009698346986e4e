"""Fault-harness fixtures: the e2e tests' Airflow DB, deploy step and layout guard, each pipeline's role. The
matrix's table (one across xdist workers) is tests/faults/report.py's."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import airflow_db, aws, deployed_layout_guard, inline_triggers  # noqa: F401


@pytest.fixture
def pipeline_role_for(aws, monkeypatch):  # noqa: F811
    """Airflow runs under `dag_id`'s role (include/iam/<dag_id>.json), as in tests/e2e/conftest.py."""
    from local_aws import aws_connection
    from local_aws.iam_setup import create_pipeline_roles

    def assume(dag_id: str) -> str:
        role_arn = create_pipeline_roles(aws.url, [dag_id])
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws.url, role_arn=role_arn))
        return role_arn

    return assume


def pytest_collection_modifyitems(config, items):
    """`faults` tests run only when the -m expression names them (`make faults`), except the CI sample
    (`faults_ci`): a plain `pytest` / `make test`, or `-m "not e2e"`, leaves the rest out."""
    if "faults" in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        sampled = item.get_closest_marker("faults_ci") is not None
        (drop if item.get_closest_marker("faults") is not None and not sampled else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the item (`item.rep_call`), for the throttled runs' table."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
