"""Where a DAG run's seconds go along its critical path, from Airflow's REST API and the run's task logs.

The critical path: from the task instance that ended last, back through the upstream task instance (of the
DAG's graph, `GET /dags/{dag_id}/tasks`) that ended last before it started, to the run's first. For each
step, the gap before it and its own phases:

* ready→queued: the upstream's end (the run's start for the first) → the scheduler queued it;
* queued→start: the executor started its process (`queued_when` → `start_date`);
* start→code: process start, DAG parse, pre-execute (→ the log's first `::endgroup::`);
* code: the task's own code (→ the log's `::group::Post Execute`, or its last line);
* code→end: post-execute, XCom push, a deferral and its trigger (→ `end_date`);
* job: seconds of the run's AWS jobs inside its start → end.

Before the first task: the asset event that started the run (its EventBridge message's `time`: the S3
upload, for an upload-triggered run) → the event's timestamp → the run's `queued_at` → `start_date`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote


@dataclass
class Step:
    task: str
    ready_to_queued: float
    queued_to_start: float
    start_to_code: float | None
    code: float | None
    code_to_end: float | None
    job: float


def _epoch(value: Any) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _name(ti: dict) -> str:
    return ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")


def log_marks(path: Path) -> tuple[float | None, float | None]:
    """(code start, code end) from a task's JSON-lines log: the first `::endgroup::` (pre-execute over),
    then its `::group::Post Execute` (else its last line)."""
    if not path.exists():
        return None, None
    code_start = code_end = last = None
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        t = _epoch(record.get("timestamp"))
        last = t or last
        event = str(record.get("event", ""))
        if code_start is None and event.startswith("::endgroup::"):
            code_start = t
        elif code_start is not None and code_end is None and event.startswith("::group::Post Execute"):
            code_end = t
    return code_start, code_end or (last if code_start else None)


def log_path(home: Path, dag_id: str, run_id: str, ti: dict) -> Path:
    folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
    if ti.get("map_index", -1) >= 0:
        folder = folder / f"map_index={ti['map_index']}"
    return folder / f"attempt={ti.get('try_number') or 1}.log"


def critical_path(tis: list[dict], upstream: dict[str, set[str]]) -> list[dict]:
    """The task instances of the critical path, first to last (see the module doc)."""
    done = [ti for ti in tis if _epoch(ti.get("start_date")) and _epoch(ti.get("end_date"))]
    if not done:
        return []
    path = [max(done, key=lambda ti: _epoch(ti["end_date"]))]
    while True:
        start = _epoch(path[-1]["start_date"])
        before = [
            ti
            for ti in done
            if ti["task_id"] in upstream.get(path[-1]["task_id"], ())
            and _epoch(ti["end_date"]) <= start + 0.5
        ]
        if not before:
            return path[::-1]
        path.append(max(before, key=lambda ti: _epoch(ti["end_date"])))


def breakdown(stack: Any, dag_id: str, run_id: str, job_seconds: Callable[[float, float], float]) -> dict:
    """The run's start (asset event → run start → first task) and its critical path's steps;
    `job_seconds(start, end)`: seconds of the run's jobs between the two."""
    run_path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
    run = stack.api("GET", run_path)
    tasks = stack.api("GET", f"/dags/{dag_id}/tasks").get("tasks", [])
    upstream: dict[str, set[str]] = {}
    for task in tasks:
        for down in task.get("downstream_task_ids") or []:
            upstream.setdefault(down, set()).add(task["task_id"])
    tis = stack.api("GET", f"{run_path}/taskInstances?limit=1000").get("task_instances", [])
    path = critical_path(tis, upstream)
    run_start = _epoch(run.get("start_date"))
    steps, ready = [], run_start
    for ti in path:
        queued, start, end = (_epoch(ti.get(k)) for k in ("queued_when", "start_date", "end_date"))
        queued = queued or start
        code_start, code_end = log_marks(log_path(Path(stack.home), dag_id, run_id, ti))
        steps.append(
            Step(
                _name(ti),
                queued - ready,
                start - queued,
                None if code_start is None else code_start - start,
                None if code_start is None else code_end - code_start,
                None if code_end is None else end - code_end,
                job_seconds(start, end),
            )
        )
        ready = end
    return {"start": run_start_gaps(stack, run_path, run, path), "steps": [asdict(s) for s in steps]}


def run_start_gaps(stack: Any, run_path: str, run: dict, path: list[dict]) -> dict[str, float]:
    """Seconds from the upload (the asset event's EventBridge `time`) to the run's first task's start."""
    marks: dict[str, float | None] = {}
    try:
        events = stack.api("GET", f"{run_path}/upstreamAssetEvents").get("asset_events", [])
    except Exception:
        events = []
    if events:
        first = min(events, key=lambda e: _epoch(e["timestamp"]))
        marks["asset event"] = _epoch(first["timestamp"])
        for message in ((first.get("extra") or {}).get("payload") or {}).get("message_batch", []):
            sent = json.loads(message.get("Body") or "{}").get("time")
            marks["upload"] = _epoch(sent) if sent else None
    marks["run queued"] = _epoch(run.get("queued_at"))
    marks["run start"] = _epoch(run.get("start_date"))
    marks["first task start"] = _epoch(path[0]["start_date"]) if path else None
    order = ["upload", "asset event", "run queued", "run start", "first task start"]
    known = [(name, marks[name]) for name in order if marks.get(name)]
    return {f"{a}→{b}": tb - ta for (a, ta), (b, tb) in zip(known, known[1:])}


def render(dag_id: str, found: dict) -> str:
    start = ", ".join(f"{k} {v:.1f}" for k, v in found["start"].items())
    head = (
        f"  {'critical path':34} {'ready→q':>7} {'q→start':>7} {'start→code':>10} {'code':>6} "
        f"{'code→end':>8} {'job':>6}"
    )
    lines = [f"{dag_id}: {start}", head]

    def cell(value: float | None, width: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:{width}.1f}"

    totals = [0.0] * 6
    for s in found["steps"]:
        values = [
            s["ready_to_queued"],
            s["queued_to_start"],
            s["start_to_code"],
            s["code"],
            s["code_to_end"],
            s["job"],
        ]
        totals = [t + (v or 0.0) for t, v in zip(totals, values)]
        widths = (7, 7, 10, 6, 8, 6)
        lines.append(f"  {s['task']:34} " + " ".join(cell(v, w) for v, w in zip(values, widths)))
    widths = (7, 7, 10, 6, 8, 6)
    lines.append(f"  {'sum':34} " + " ".join(cell(v, w) for v, w in zip(totals, widths)))
    return "\n".join(lines)
