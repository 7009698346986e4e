"""The fault harness's table as one across pytest-xdist workers (a pytest plugin, loaded by tests/conftest.py
so that the xdist controller, which collects no test, has it too).

Each process appends its finished cells and throttled runs to its own JSON-lines file in one directory per
session, .airflow/faults/cells/<start>-<pid>/ (`matrix.RECORDS`). The controller — or the only process,
without xdist — renders the table from all of them into .airflow/faults/matrix.md after every finished test
(a run stopped half-way leaves the table) and prints it at the end."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from tests.faults import matrix

REPO_ROOT = Path(__file__).resolve().parents[2]
_WORKER_DIR_KEY = "orchard_faults_records"
_controller_records: Path | None = None  # this session's directory, in the process that renders the table


def report_path() -> Path:
    return Path(os.environ.get("ORCHARD_FAULTS_REPORT", REPO_ROOT / ".airflow" / "faults" / "matrix.md"))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    if _is_worker(config):
        records = Path(config.workerinput[_WORKER_DIR_KEY])
        matrix.RECORDS = records / f"{config.workerinput['workerid']}.jsonl"
        return
    global _controller_records
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    _controller_records = report_path().parent / "cells" / f"{stamp}-{os.getpid()}"
    matrix.RECORDS = _controller_records / "main.jsonl"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: every worker writes into the controller's directory for this session."""
    node.workerinput[_WORKER_DIR_KEY] = str(_controller_records)


def write_report(records: Path, out: Path) -> bool:
    """Render every record under `records` into `out`; False when there is none yet."""
    if not records.is_dir():
        return False
    cells, throttled = matrix.load_records(records)
    if not cells and not throttled:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.write_text(f"# Fault matrix ({stamp})\n\n{matrix.render(cells, throttled)}\n")
    return True


def pytest_runtest_logfinish(nodeid, location):
    """The table so far, after every test (xdist calls this on the controller as each worker's test ends);
    workers leave the file to the controller."""
    if _controller_records is not None:
        write_report(_controller_records, report_path())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    records = _controller_records
    if records is None or not write_report(records, report_path()):
        return
    cells, throttled = matrix.load_records(records)
    terminalreporter.write_sep("=", "fault matrix")
    terminalreporter.write_line(matrix.render(cells, throttled))
    terminalreporter.write_line(f"written to {report_path()} (each cell's record: {records}/)")
