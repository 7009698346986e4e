"""The fault matrix: run a pipeline with one task failing BEFORE its AWS work or AFTER it, then inventory.

`inject(dag, task_id, when)` wraps the task's operator `execute`: "before" raises before the task does
anything; "after" lets it run — its AWS calls made, a deferral counting as the call having happened (the
job was submitted) — then raises. Every task of the run gets retries=0, so the injected failure is final
and the run ends in minutes. Each cell's result is recorded for the session's table: appended as one JSON
line to this process's records file (`RECORDS`, set by tests/faults/report.py), so the table is one across
pytest-xdist workers — the controller renders it from every worker's file.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULTS: list[Cell] = []  # this process's cells
THROTTLED: list[dict] = []  # this process's throttled e2e runs
RECORDS: Path | None = None  # this process's records file (one per xdist worker); None: not recorded


class InjectedFault(RuntimeError):
    """The fault harness failed this task on purpose."""


@dataclass
class Cell:
    dag_id: str
    task_id: str
    when: str
    state: str = "?"
    leftovers: list[str] = field(default_factory=list)
    failed_tasks: list[str] = field(default_factory=list)
    injected: int = 0  # how many times the wrapped execute raised (mapped tasks: once per index)
    aws_calls: int = 0  # AWS calls the task made inside execute before an "after" fault (this thread)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # setup / run / inventory, seconds
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "failed" and not self.leftovers and self.injected > 0 and not self.error


_counting = threading.local()


def _count_aws_calls() -> None:
    """Count botocore calls made on a thread while `_counting.active` is set (idempotent)."""
    import botocore.client

    if getattr(botocore.client.BaseClient, "_orchard_faults_counted", False):
        return
    original = botocore.client.BaseClient._make_api_call

    def counted(self, operation_name, api_params):
        if getattr(_counting, "active", False):
            _counting.calls = getattr(_counting, "calls", 0) + 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counted
    botocore.client.BaseClient._orchard_faults_counted = True


def inject(dag, task_id: str, when: str, cell: Cell, monkeypatch) -> None:
    if when not in ("before", "after"):
        raise ValueError(f"when is 'before' or 'after', not {when!r}")
    for task in dag.tasks:
        if hasattr(task, "partial_kwargs"):
            task.partial_kwargs["retries"] = 0
        else:
            task.retries = 0
    task = dag.get_task(task_id)
    operator_class = getattr(task, "operator_class", None) or type(task)
    original = operator_class.execute
    _count_aws_calls()

    def execute(self, context):
        if self.task_id != task_id:
            return original(self, context)
        cell.injected += 1
        if when == "before":
            raise InjectedFault(f"fault harness: {task_id} failed before its AWS calls")
        _counting.active, _counting.calls = True, 0
        try:
            original(self, context)
        except BaseException as error:
            if type(error).__name__ != "TaskDeferred":  # a deferral: the job was submitted, fail now
                raise
        finally:
            _counting.active = False
            cell.aws_calls += getattr(_counting, "calls", 0)
        raise InjectedFault(f"fault harness: {task_id} failed after its AWS calls")

    monkeypatch.setattr(operator_class, "execute", execute)


def run_cell(pipeline, task_id: str, when: str, monkeypatch) -> Cell:
    from tests.dag_files import load_dag
    from tests.faults.pipelines import settled_inventory

    cell = Cell(pipeline.dag_id, task_id, when)
    RESULTS.append(cell)
    started = lap = time.monotonic()

    def phase(name: str) -> None:
        nonlocal lap
        now = time.monotonic()
        cell.phases[name] = now - lap
        lap = now

    try:
        conf = pipeline.setup(monkeypatch)
        dag = load_dag(pipeline.dag_file)
        inject(dag, task_id, when, cell, monkeypatch)
        sync_only(pipeline.dag_file, monkeypatch)
        phase("setup")
        run = dag.test(run_conf=conf)
        phase("run")
        cell.state = str(getattr(run.state, "value", run.state))
        cell.failed_tasks = sorted(ti.task_id for ti in run.get_task_instances() if ti.state == "failed")
    except Exception as error:  # the harness itself broke: the cell says so, and fails
        cell.error = f"{type(error).__name__}: {error}"[:300]
    lap = time.monotonic()
    cell.leftovers = settled_inventory()
    phase("inventory")
    cell.seconds = time.monotonic() - started
    record("cell", dataclasses.asdict(cell))
    return cell


def record(kind: str, row: dict) -> None:
    """Append one finished result ("cell" or "throttled") to this process's records file."""
    if RECORDS is None:
        return
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with RECORDS.open("a") as out:
        out.write(json.dumps({"kind": kind, **row}) + "\n")


def load_records(directory: Path) -> tuple[list[Cell], list[dict]]:
    """Every worker's records under `directory`: the cells and the throttled runs, in file then line order.
    A line still being written (a worker mid-append) is skipped: the next render reads it whole."""
    cells: list[Cell] = []
    throttled: list[dict] = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = row.pop("kind", None)
            if kind == "cell":
                cells.append(Cell(**row))
            elif kind == "throttled":
                throttled.append(row)
    return cells, throttled


def sync_only(dag_file, monkeypatch) -> None:
    """`dag.test()` re-parses the DAG's whole bundle into the metadata DB on every call (all five pipelines,
    seconds a cell); the run needs only its own DAG there. Its bag reads that one file instead: the same
    parse, serialization and DB write, for the DAG under test."""
    from airflow.dag_processing import dagbag as dagbag_module

    bundle_bag = dagbag_module.BundleDagBag
    folder = dag_file.parent

    def one_file_bag(*args, dag_folder=None, **kwargs):
        if dag_folder is not None and Path(dag_folder) == folder:
            dag_folder = str(dag_file)
        return bundle_bag(*args, dag_folder=dag_folder, **kwargs)

    monkeypatch.setattr(dagbag_module, "BundleDagBag", one_file_bag)


def render(cells: list[Cell] | None = None, throttled: list[dict] | None = None) -> str:
    """The table of `cells` and `throttled` (default: this process's)."""
    cells = RESULTS if cells is None else cells
    throttled = THROTTLED if throttled is None else throttled
    lines = []
    if cells:
        lines += [
            "| pipeline | task | fault | run state | leftovers | AWS calls before fault | s (setup/run/inventory) |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in cells:
            state = c.state if c.state == "failed" else f"**{c.state}** (must be failed)"
            if c.error:
                state = f"**harness error**: {c.error}"
            elif c.injected == 0:
                state += " (task never ran: fault not injected)"
            left = "<br>".join(f"**{x}**" for x in c.leftovers) or "none"
            calls = str(c.aws_calls) if c.when == "after" else "–"
            split = "/".join(f"{c.phases.get(p, 0):.0f}" for p in ("setup", "run", "inventory"))
            lines.append(
                f"| {c.dag_id} | {c.task_id} | {c.when} | {state} | {left} | {calls} | {c.seconds:.0f} ({split}) |"
            )
        bad = [c for c in cells if not c.ok]
        green = sum(1 for c in cells if c.state == "success")
        leaky = sum(1 for c in cells if c.leftovers)
        lines += [
            "",
            f"cells: {len(cells)}, passing: {len(cells) - len(bad)}, green runs: {green}, "
            f"cells with leftovers: {leaky}, time: {sum(c.seconds for c in cells):.0f} s, "
            f"median cell: {statistics.median(c.seconds for c in cells):.0f} s",
        ]
    if throttled:
        lines += [
            "",
            "| throttled e2e | outcome | throttles injected per service (of requests seen) | s |",
            "|---|---|---|---|",
        ]
        for t in throttled:
            lines.append(f"| {t['test']} | {t['outcome']} | {t['services']} | {t['seconds']:.0f} |")
    return "\n".join(lines)
