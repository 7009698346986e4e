"""The fault table is one across pytest-xdist workers: each worker's records render into one table."""

from __future__ import annotations

import dataclasses
import json

from tests.faults import matrix, report


def _write(path, kind, row):
    with path.open("a") as out:
        out.write(json.dumps({"kind": kind, **row}) + "\n")


def _cell(task_id, when, state="failed", leftovers=(), seconds=10.0):
    return dataclasses.asdict(
        matrix.Cell(
            "pose_training",
            task_id,
            when,
            state=state,
            leftovers=list(leftovers),
            injected=1,
            seconds=seconds,
            phases={"setup": 1.0, "run": seconds - 2, "inventory": 1.0},
        )
    )


def test_two_workers_records_render_one_table_with_the_totals_of_both(tmp_path, monkeypatch):
    records = tmp_path / "cells"
    records.mkdir()
    _write(records / "gw0.jsonl", "cell", _cell("train", "before", seconds=10))
    _write(records / "gw0.jsonl", "cell", _cell("train", "after", leftovers=["Batch job j1 (RUNNING)"]))
    _write(records / "gw1.jsonl", "cell", _cell("evaluate", "before", state="success", seconds=30))
    _write(
        records / "gw1.jsonl",
        "throttled",
        {"test": "auto_labeling", "outcome": "passed", "services": "s3 1/3", "seconds": 90.0},
    )
    with (records / "gw1.jsonl").open("a") as mid_append:  # a worker still writing its next line
        mid_append.write('{"kind": "cell", "dag_id": "pose_tr')
    out = tmp_path / "matrix.md"

    assert report.write_report(records, out)

    table = out.read_text()
    assert "| pose_training | train | before | failed | none |" in table
    assert "**Batch job j1 (RUNNING)**" in table
    assert "| pose_training | evaluate | before | **success** (must be failed) |" in table
    assert (
        "cells: 3, passing: 1, green runs: 1, cells with leftovers: 1, time: 50 s, median cell: 10 s" in table
    )
    assert "| auto_labeling | passed | s3 1/3 | 90 |" in table


def test_no_records_write_no_table(tmp_path):
    out = tmp_path / "matrix.md"
    assert not report.write_report(tmp_path / "cells", out)
    assert not out.exists()


def test_a_cell_is_appended_to_this_processs_records_file(tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "RECORDS", tmp_path / "gw3.jsonl")
    matrix.record("cell", _cell("train", "after"))
    matrix.record(
        "throttled", {"test": "edge_deployment", "outcome": "passed", "services": "", "seconds": 1.0}
    )

    cells, throttled = matrix.load_records(tmp_path)

    assert [(c.task_id, c.when, c.injected) for c in cells] == [("train", "after", 1)]
    assert [t["test"] for t in throttled] == ["edge_deployment"]
