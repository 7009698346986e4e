"""benchmarks/airflow_overhead_compare.py: medians of "AWS s" and "Airflow %" beside the headline, and a JSON
written before those figures existed (the base checkout's) still compares."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import airflow_overhead_compare as compare  # noqa: E402

BASE = {"dag_id": "fruit_features", "state": "success", "task_s": 10.0, "sched_s": 5.0}


def write(path: Path, runs: list[dict]) -> Path:
    path.write_text(json.dumps({"label": "tuned", "runs": runs}))
    return path


def run(wall: float, job: float, aws: float | None = None, state: str = "success") -> dict:
    figures = {"wall_s": wall, "job_s": job, "overhead": (wall - job) / wall}
    if aws is not None:
        figures |= {"aws_s": aws, "airflow_share": (wall - aws) / wall}
    return {**BASE, **figures, "state": state}


def test_medians_take_aws_seconds_and_airflow_share_of_the_successful_runs(tmp_path):
    path = write(
        tmp_path / "a.json",
        [run(200, 150, 180), run(220, 150, 190), run(100, 10, 20, state="failed"), run(240, 160, 200)],
    )
    fruit = compare.medians([path])["fruit_features"]
    assert fruit["runs"] == 3 and fruit["aws_s"] == 190 and fruit["airflow_share"] == (220 - 190) / 220
    assert fruit["outside_s"] == 70


def test_a_json_without_aws_seconds_shows_a_dash_and_no_ratio(tmp_path, capsys, monkeypatch):
    after = write(tmp_path / "a.json", [run(200, 150, 180)])
    before = write(tmp_path / "b.json", [run(210, 150)])
    assert compare.medians([before])["fruit_features"]["aws_s"] is None
    monkeypatch.setattr(sys, "argv", ["compare", "--after", str(after), "--before", str(before)])
    compare.main()
    row = capsys.readouterr().out.splitlines()[1]
    before_cells = row.split("| before:")[1].split("|")[0].split()
    assert before_cells[3:5] == ["-", "-"]  # AWS s, Airflow %
    assert row.rstrip().endswith("0.95, 0.83, 0.88, -, 1.00")  # wall, outside, overhead, Airflow %, task
