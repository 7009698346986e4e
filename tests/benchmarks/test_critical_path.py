"""benchmarks/_critical_path.py: a task that deferred and resumed keeps its first try's start_date while its
queued_when is the resume's; its phases must not go negative. Canned REST answers and task logs, no stack."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _critical_path as critical  # noqa: E402

T0 = dt.datetime(2026, 12, 7, 15, 14, 30, tzinfo=dt.UTC)
DAG, RUN = "fruit_features", "demo__20261207T151353"


def approx(seconds: float):
    return pytest.approx(seconds, abs=1e-3)  # epoch floats: microseconds, not exact decimals


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def ti(task_id: str, start: float, end: float, queued: float, scheduled: float, map_index: int = -1) -> dict:
    return {
        "task_id": task_id,
        "map_index": map_index,
        "try_number": 1,
        "start_date": at(start),
        "end_date": at(end),
        "queued_when": at(queued),
        "scheduled_when": at(scheduled),
    }


class FakeStack:
    """The REST answers _critical_path.breakdown reads, in Airflow 3's shapes."""

    def __init__(self, home: Path, tis: list[dict], downstream: dict[str, list[str]]):
        self.home, self.tis = home, tis
        self.tasks = [{"task_id": t, "downstream_task_ids": d} for t, d in downstream.items()]

    def api(self, method: str, path: str) -> dict:
        run_path = f"/dags/{DAG}/dagRuns/{RUN}"
        if path == run_path:
            return {"start_date": at(0), "queued_at": at(-1)}
        if path == f"/dags/{DAG}/tasks":
            return {"tasks": self.tasks}
        if path == f"{run_path}/taskInstances?limit=1000":
            return {"task_instances": self.tis}
        if path == f"{run_path}/upstreamAssetEvents":
            return {"asset_events": []}
        raise AssertionError(path)


def write_log(home: Path, ti: dict, events: list[tuple[float, str]]) -> None:
    path = critical.log_path(home, DAG, RUN, ti)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"timestamp": at(t), "event": e}) + "\n" for t, e in events))


@pytest.fixture
def deferred_run(tmp_path):
    """cluster_name[1] → create_cluster[1]: created the cluster, deferred at 4.5, its trigger's event at 7.9,
    the resume queued at 8.4 and ended at 10 (fruit_features' scaling_run, as in session 24's demo)."""
    name = ti("scaling_run.cluster_name", 0.2, 1.0, queued=0.1, scheduled=0.0, map_index=1)
    create = ti("scaling_run.create_cluster", 1.8, 10.0, queued=8.4, scheduled=7.9, map_index=1)
    write_log(
        tmp_path, name, [(0.3, "::group::Pre Execute"), (0.6, "::endgroup::"), (0.8, "::group::Post Execute")]
    )
    write_log(
        tmp_path,
        create,
        [
            (1.9, "::group::Pre Execute"),
            (3.0, "::endgroup::"),
            (4.5, "::group::Post Execute"),
            (4.6, "Pausing task as DEFERRED. "),
            (8.7, "::group::Pre Execute"),
            (9.2, "::endgroup::"),
            (9.6, "::group::Post Execute"),
        ],
    )
    downstream = {
        "scaling_run.cluster_name": ["scaling_run.create_cluster"],
        "scaling_run.create_cluster": [],
    }
    return FakeStack(tmp_path, [name, create], downstream)


def breakdown(stack) -> list[dict]:
    return critical.breakdown(stack, DAG, RUN, lambda a, b: 0.0)["steps"]


def test_a_resumed_task_has_no_negative_phase_and_its_resume_is_apart(deferred_run):
    first, resumed = breakdown(deferred_run)
    phases = ("ready_to_queued", "queued_to_start", "start_to_code", "code", "code_to_end", "resume")
    assert all(resumed[p] is None or resumed[p] >= 0 for p in phases), resumed
    # its first queueing is unknown (overwritten by the resume's): ready→start whole
    assert resumed["ready_to_queued"] is None and resumed["queued_to_start"] is None
    assert resumed["ready_to_start"] == approx(0.8)
    assert resumed["code"] == approx(1.5)  # first endgroup → the deferral's Post Execute
    assert resumed["code_to_end"] == approx(3.4)  # → the trigger's event (scheduled_when)
    assert resumed["resume"] == approx(2.1)  # the event → end
    assert resumed["resume_to_queued"] == approx(0.5)
    known = ("ready_to_start", "start_to_code", "code", "code_to_end", "resume")
    assert sum(resumed[p] for p in known) == approx(10.0 - 1.0)  # its upstream's end → its end


def test_a_task_that_did_not_resume_keeps_its_queue_phases(deferred_run):
    first, _ = breakdown(deferred_run)
    assert first["ready_to_queued"] == approx(0.1) and first["queued_to_start"] == approx(0.1)
    assert first["resume"] is None and first["ready_to_start"] == approx(0.2)


def test_render_marks_the_resumed_task_and_shows_its_resume(deferred_run):
    found = critical.breakdown(deferred_run, DAG, RUN, lambda a, b: 0.0)
    row = next(line for line in critical.render(DAG, found).splitlines() if "create_cluster[1]" in line)
    assert row.split()[1:] == ["0.8*", "-", "1.2", "1.5", "3.4", "2.1", "0.0"]
