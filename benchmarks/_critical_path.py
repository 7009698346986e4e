"""Where a DAG run's seconds go along its critical path, from Airflow's REST API and the run's task logs.

The critical path: from the task instance that ended last, back through the upstream task instance (of the
DAG's graph, `GET /dags/{dag_id}/tasks`) that ended last before it started, to the run's first. For each
step, the gap before it and its own phases:

* ready→queued: the upstream's end (the run's start for the first) → the scheduler queued it;
* queued→start: the executor started its process (`queued_when` → `start_date`);
* start→code: process start, DAG parse, pre-execute (→ the log's first `::endgroup::`);
* code: the task's own code (→ the log's `::group::Post Execute`, or its last line);
* code→end: post-execute, XCom push, a deferral and its trigger (→ `end_date`);
* resume: for a task that deferred and resumed in a new process, its trigger's event → `end_date`
  (rescheduling, queueing and starting the resumed process, the method after the deferral);
* job: seconds of the run's AWS jobs inside its start → end.

A task that deferred and resumed keeps its first try's `start_date`, but the scheduler overwrites its
`queued_when` when it queues the resume, and the trigger's event sets its `scheduled_when`
(airflow/models/trigger.py `handle_event_submit`; 3.3's execution API keeps `start_date` on a resume). Its
first queueing is not kept anywhere, so its ready→queued and queued→start are unknown: the table shows its
ready→start whole (marked `*`), its code→end ends at the trigger's event and the resume is shown apart.

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
    ready_to_queued: float | None  # None: unknown (a resumed task's first queueing is overwritten)
    queued_to_start: float | None
    start_to_code: float | None
    code: float | None
    code_to_end: float | None
    job: float
    ready_to_start: float = 0.0
    resume: float | None = None  # the trigger's event → end, for a task that deferred and resumed
    resume_to_queued: float | None = None  # the trigger's event → the resume queued


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
        marks = log_marks(log_path(Path(stack.home), dag_id, run_id, ti))
        steps.append(step(ti, ready, marks, job_seconds))
        ready = _epoch(ti["end_date"])
    return {"start": run_start_gaps(stack, run_path, run, path), "steps": [asdict(s) for s in steps]}


def resumed(ti: dict) -> bool:
    """The task deferred and resumed in a new process: its resume was queued after its first start."""
    queued, start = _epoch(ti.get("queued_when")), _epoch(ti.get("start_date"))
    return queued is not None and queued > start


def step(
    ti: dict,
    ready: float,
    marks: tuple[float | None, float | None],
    job_seconds: Callable[[float, float], float],
) -> Step:
    """One critical-path task instance's phases (see the module doc); `ready`: its upstream's end."""
    queued, start, end = (_epoch(ti.get(k)) for k in ("queued_when", "start_date", "end_date"))
    code_start, code_end = marks
    ready_to_queued = queued_to_start = resume = resume_to_queued = None
    first_try_end = end  # where code→end stops: the end, or a resumed task's trigger event
    if resumed(ti):
        event = _epoch(ti.get("scheduled_when"))
        resumed_from = event if event is not None and start <= event <= queued else queued
        first_try_end, resume, resume_to_queued = resumed_from, end - resumed_from, queued - resumed_from
    else:
        queued = queued or start
        ready_to_queued, queued_to_start = queued - ready, start - queued
    return Step(
        _name(ti),
        ready_to_queued,
        queued_to_start,
        None if code_start is None else code_start - start,
        None if code_start is None else code_end - code_start,
        None if code_end is None else first_try_end - code_end,
        job_seconds(start, end),
        ready_to_start=start - ready,
        resume=resume,
        resume_to_queued=resume_to_queued,
    )


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


WIDTHS = (7, 7, 10, 6, 8, 6, 6)


def _cell(value: float | None, width: int, mark: str = "") -> str:
    text = "-" if value is None else f"{value:.1f}{mark}"
    return f"{text:>{width}}"


def render(dag_id: str, found: dict) -> str:
    start = ", ".join(f"{k} {v:.1f}" for k, v in found["start"].items())
    head = (
        f"  {'critical path':34} {'ready→q':>7} {'q→start':>7} {'start→code':>10} {'code':>6} "
        f"{'code→end':>8} {'resume':>6} {'job':>6}"
    )
    lines = [f"{dag_id}: {start}", head]
    totals, any_resumed = [0.0] * len(WIDTHS), False
    for s in found["steps"]:
        was_resumed = s.get("resume") is not None
        any_resumed |= was_resumed
        # a resumed task's ready→start, whole, in the ready→q column (marked *)
        first = s["ready_to_start"] if was_resumed else s["ready_to_queued"]
        values = [first, s["queued_to_start"], s["start_to_code"], s["code"], s["code_to_end"]]
        values += [s.get("resume"), s["job"]]
        totals = [t + (v or 0.0) for t, v in zip(totals, values)]
        cells = [
            _cell(v, w, "*" if i == 0 and was_resumed else "") for i, (v, w) in enumerate(zip(values, WIDTHS))
        ]
        lines.append(f"  {s['task']:34} " + " ".join(cells))
    lines.append(f"  {'sum':34} " + " ".join(_cell(v, w) for v, w in zip(totals, WIDTHS)))
    if any_resumed:
        lines.append(
            "  * deferred and resumed: ready→start whole (its first queueing is overwritten by the resume's); "
            "code→end to its trigger's event; resume: event → end"
        )
    return "\n".join(lines)
