"""The floor under a DAG file's parse cost, and where its own work goes (benchmarks/dag_parse_time.py
--floor / --profile, issue 17.3).

Floor: for each file, two provider-style "twins" are written to a scratch folder and parsed in the same
runs as the file and the anchor: the anchor's five Amazon provider operators repeated to the file's task
count and chained, with no params ("tasks"), and the same with the file's params as plain
``airflow.sdk.Param`` objects, same values and schemas, scheduled the way the file is so that Airflow
validates them when it does for the file ("tasks+params"). What a twin costs is Airflow's own work for a
DAG of that size written the way the provider's system tests are; what the file costs above its
tasks+params twin is orchard's. The per-task and per-param costs are fitted from the twins and the anchor.

Profile: cProfile of the file's own work in fresh children (CPU-time clock), stats summed over the runs;
the cumulative CPU of the Airflow steps that dominate (param validation, params copies, operator
__init__, DAG hashing over Assets, dependency setting, mapping), then the top functions by own time.

Every figure is CPU time of the file's execution (its imports loaded first, untimed), in fresh forked
children of one worker that holds airflow.sdk, as tests/dags/parse_budget.py measures wall time: on a
machine shared by other work, CPU time moves less than wall time. Files, twins and anchor alternate
within each run; ratios to the anchor are taken run by run, then the median.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.dags.parse_budget import (
    _exec_dag_file,
    _run_statements,
    _warm_up_dag_machinery,
    freeze_like_the_dag_processor,
    scan_imports,
)

ANCHOR_OPERATORS = (  # the anchor's five operators, as it builds them (benchmarks/parse_anchor/)
    "BatchCreateComputeEnvironmentOperator(task_id={id!r}, compute_environment_name='anchor-ce', "
    "environment_type='MANAGED', state='ENABLED', compute_resources={{'type': 'FARGATE', 'maxvCpus': 10, "
    "'securityGroupIds': ['sg-00000000'], 'subnets': ['subnet-00000000']}})",
    "BatchComputeEnvironmentSensor(task_id={id!r}, compute_environment='anchor-ce')",
    "BatchJobQueueSensor(task_id={id!r}, job_queue='anchor-queue')",
    "BatchOperator(task_id={id!r}, job_name='anchor-job', job_queue='anchor-queue', "
    "job_definition='anchor-def', container_overrides={{}})",
    "BatchSensor(task_id={id!r}, job_id='anchor-job-id')",
)
TWIN_HEADER = """from datetime import datetime

from airflow.providers.amazon.aws.operators.batch import BatchCreateComputeEnvironmentOperator, BatchOperator
from airflow.providers.amazon.aws.sensors.batch import (
    BatchComputeEnvironmentSensor,
    BatchJobQueueSensor,
    BatchSensor,
)
from airflow.sdk import DAG, Param, chain
"""
# Airflow steps whose cumulative cost the profile reports (function name as cProfile keys it).
STEPS = {
    "param validation (ParamsDict.validate)": ("airflow/sdk/definitions/param.py", "validate"),
    "params copies (get_merged_defaults)": ("airflow/sdk/bases/operator.py", "get_merged_defaults"),
    "DAG.__hash__ (dependency checks)": ("airflow/sdk/definitions/dag.py", "__hash__"),
    "Asset.__hash__": ("airflow/sdk/definitions/asset/__init__.py", "__hash__"),
    "dependencies (_set_relatives)": ("airflow/sdk/definitions/_internal/node.py", "_set_relatives"),
    "task-group mapping (expand)": ("airflow/sdk/definitions/decorators/task_group.py", "_create_task_group"),
}


@dataclass(frozen=True)
class DagShape:
    """What a twin copies from a file's DAG."""

    dag_id: str
    tasks: int
    params: dict  # name -> {"value", "description", "schema"}
    validates_params: bool  # Airflow validates a DAG's params at parse only when it can be scheduled


# --- one fresh child ------------------------------------------------------------------------------


def in_child(function: Callable[[], object]) -> object:
    """``function()`` in a forked child (stdout silenced); its JSON-able result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        try:
            result = {"ok": function()}
        except BaseException as error:  # noqa: BLE001  reported to the parent, not raised in the child
            result = {"error": f"{type(error).__name__}: {error}"}
        with os.fdopen(write_end, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        text = report.read()
    os.waitpid(pid, 0)
    result = json.loads(text) if text else {"error": "child died"}
    if "error" in result:
        raise RuntimeError(result["error"])
    return result["ok"]


def _load_imports(path: Path) -> None:
    sys.path.append(str(path.parent))
    imports = scan_imports(path)
    for group in (imports.baseline, imports.airflow, imports.other):
        _run_statements(group)


def _parse_cpu_ms(path: Path) -> float:
    _load_imports(path)
    started = time.process_time()
    _exec_dag_file(str(path))
    return (time.process_time() - started) * 1e3


def _shape(path: Path) -> dict:
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    _load_imports(path)
    module_name = "orchard_parse_budget_" + path.stem  # the name _exec_dag_file loads it under
    DagContext.current_autoregister_module_name = module_name  # as the DagBag does: collects its DAGs
    _exec_dag_file(str(path))
    (dag,) = {dag for dag, _ in DagContext.autoregistered_dags}
    params = {
        key: {"value": p.value, "description": p.description, "schema": p.schema}
        for key, p in dag.params.items()
    }
    return {
        "dag_id": dag.dag_id,
        "tasks": len(dag.task_dict),
        "params": params,
        "validates_params": bool(dag.timetable and dag.timetable.can_be_scheduled),
    }


def shape_of(path: Path) -> DagShape:
    return DagShape(**in_child(lambda: _shape(path)))


# --- twins ----------------------------------------------------------------------------------------


def write_twin(shape: DagShape, folder: Path, with_params: bool) -> Path:
    kind = "tasks_params" if with_params else "tasks"
    ops = [ANCHOR_OPERATORS[i % len(ANCHOR_OPERATORS)].format(id=f"t{i}") for i in range(shape.tasks)]
    params = shape.params if with_params else {}
    schedule = "'@daily'" if with_params and shape.validates_params else "None"
    body = [
        TWIN_HEADER,
        f"SPECS = {params!r}",
        "PARAMS = {k: Param(s['value'], description=s['description'], schema=s['schema']) "
        "for k, s in SPECS.items()}",
        f"with DAG(dag_id={shape.dag_id + '_twin_' + kind!r}, schedule={schedule}, "
        "start_date=datetime(2021, 1, 1), catchup=False, params=PARAMS) as dag:",
        "    tasks = [",
        *(f"        {op}," for op in ops),
        "    ]",
        "    chain(*tasks)",
    ]
    path = folder / f"{shape.dag_id}_twin_{kind}.py"
    path.write_text("\n".join(body) + "\n")
    return path


# --- measuring ------------------------------------------------------------------------------------


def _prepare_worker() -> None:
    import airflow.sdk  # noqa: F401  what the DAG processor holds before it forks

    _warm_up_dag_machinery()
    freeze_like_the_dag_processor()


@dataclass(frozen=True)
class FloorRow:
    path: Path
    shape: DagShape
    file_ms: float
    tasks_ms: float
    params_ms: float
    anchor_ms: float
    file_x: float  # each x anchor: per run, then the median
    tasks_x: float
    params_x: float


def measure_floor(anchor: Path, files: Sequence[Path], runs: int) -> list[FloorRow]:
    _prepare_worker()
    shapes = {f: shape_of(f) for f in files}
    with tempfile.TemporaryDirectory(prefix="orchard-parse-floor-") as scratch:
        twins = {
            f: (write_twin(s, Path(scratch), False), write_twin(s, Path(scratch), True))
            for f, s in shapes.items()
        }
        samples: dict[Path, list[float]] = {}
        for _ in range(runs):
            for path in [anchor, *files, *(t for pair in twins.values() for t in pair)]:
                samples.setdefault(path, []).append(in_child(lambda p=path: _parse_cpu_ms(p)))
        return [_floor_row(f, shapes[f], samples, anchor, twins[f]) for f in files]


def _floor_row(
    path: Path, shape: DagShape, samples: dict, anchor: Path, twins: tuple[Path, Path]
) -> FloorRow:
    med = statistics.median
    anchors = samples[anchor]

    def x(values: list[float]) -> float:
        return med(v / a for v, a in zip(values, anchors, strict=True))

    tasks, params = (samples[t] for t in twins)
    return FloorRow(
        path,
        shape,
        med(samples[path]),
        med(tasks),
        med(params),
        med(anchors),
        x(samples[path]),
        x(tasks),
        x(params),
    )


def floor_table(rows: Sequence[FloorRow], anchor_tasks: int, shown: Callable[[Path], str]) -> str:
    header = (
        "file",
        "tasks",
        "params",
        "file CPU ms",
        "x anchor",
        "twin: tasks x anchor",
        "twin: tasks+params x anchor",
        "orchard's above the floor (x anchor)",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                shown(r.path),
                str(r.shape.tasks),
                f"{len(r.shape.params)}{' (validated)' if r.shape.validates_params else ''}",
                f"{r.file_ms:.1f}",
                f"{r.file_x:.2f}",
                f"{r.tasks_x:.2f}",
                f"{r.params_x:.2f}",
                f"{r.file_x - r.params_x:+.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text + ["", _per_unit_costs(rows, anchor_tasks)])


def _per_unit_costs(rows: Sequence[FloorRow], anchor_tasks: int) -> str:
    """Airflow's cost per provider operator (twins without params vs the anchor) and per param of a DAG
    per task (tasks+params twin vs tasks twin), each the median over the files' twins."""
    anchor_ms = statistics.median(r.anchor_ms for r in rows)
    per_task = [
        (r.tasks_ms - r.anchor_ms) / (r.shape.tasks - anchor_tasks)
        for r in rows
        if r.shape.tasks > anchor_tasks
    ]
    per_param_task = [
        (r.params_ms - r.tasks_ms) / (len(r.shape.params) * r.shape.tasks) for r in rows if r.shape.params
    ]
    med = statistics.median
    return (
        f"Airflow's own cost, from the twins (median over the files): {med(per_task):.2f} ms CPU per provider "
        f"operator beyond the anchor's {anchor_tasks} (which cost {anchor_ms:.1f} ms with their DAG); "
        f"{med(per_param_task) * 1e3:.0f} us per plain Param per task (Airflow deep-copies the DAG's params "
        "into every operator, once per class of its hierarchy, and validates them when the DAG is scheduled).\n"
        "The tasks+params twin is the floor for a file: a provider-style DAG with its task count and its "
        "params costs that much; a file below it is cheaper than plain Params make it."
    )


# --- profile --------------------------------------------------------------------------------------


def _profiled(path: Path, out: str) -> None:
    _load_imports(path)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    _exec_dag_file(str(path))
    profile.disable()
    profile.dump_stats(out)


def profile_files(files: Sequence[Path], runs: int, top: int, shown: Callable[[Path], str]) -> str:
    _prepare_worker()
    blocks = []
    with tempfile.TemporaryDirectory(prefix="orchard-parse-profile-") as scratch:
        for path in files:
            outs = [str(Path(scratch) / f"{path.stem}.{i}.prof") for i in range(runs)]
            for out in outs:
                in_child(lambda o=out: _profiled(path, o))
            blocks.append(_profile_block(shown(path), pstats.Stats(*outs), runs, top))
    return "\n\n".join(blocks)


def _profile_block(name: str, stats: pstats.Stats, runs: int, top: int) -> str:
    total = stats.total_tt / runs * 1e3
    lines = [f"{name}: own work {total:.1f} ms CPU under cProfile (mean of {runs} runs)"]
    for step, (file_end, function) in STEPS.items():
        cumulative = sum(
            row[3]
            for (file, _, func), row in stats.stats.items()
            if func == function and file.endswith(file_end)
        )
        lines.append(
            f"  {step:42s} {cumulative / runs * 1e3:7.1f} ms  {cumulative / runs * 1e3 / total:5.0%}"
        )
    lines.append(f"  top {top} functions by own time:")
    own = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (file, line, func), row in own:
        where = file.split("site-packages/")[-1].split("/s20-parse/")[-1]
        lines.append(f"    {row[2] / runs * 1e3:6.2f} ms  {row[1] // runs:6d} calls  {where}:{line}({func})")
    return "\n".join(lines)
