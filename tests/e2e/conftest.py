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
