"""Fault-harness fixtures: the e2e tests' Airflow DB, deploy step and layout guard, each pipeline's role, and
the matrix's table (printed at the end of the session and written to .airflow/faults/matrix.md)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import airflow_db, aws, deployed_layout_guard, inline_triggers  # noqa: F401
from tests.faults import matrix

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def _write_report() -> Path:
    out = Path(os.environ.get("ORCHARD_FAULTS_REPORT", REPO_ROOT / ".airflow" / "faults" / "matrix.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.write_text(f"# Fault matrix ({stamp})\n\n{matrix.render()}\n")
    return out


def pytest_runtest_logfinish(nodeid, location):
    """The table so far, after every cell: a run stopped half-way (hours for all five) still leaves it."""
    if matrix.RESULTS or matrix.THROTTLED:
        _write_report()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not matrix.RESULTS and not matrix.THROTTLED:
        return
    terminalreporter.write_sep("=", "fault matrix")
    terminalreporter.write_line(matrix.render())
    terminalreporter.write_line(f"written to {_write_report()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the item (`item.rep_call`), for the throttled runs' table."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
