"""Twin DAGs for benchmarks/airflow_overhead_floor.py: a pipeline's graph with tasks that only defer.

A twin copies from the real DAG object its task ids, task groups (mapped or not), mapped tasks,
dependencies, trigger rules, setups/teardowns and branch points; from a real run (or `--job-seconds`) it
takes each task's map count, its deferrals and the job seconds that ran during each, which branches were
followed and which tasks skipped themselves. Each twin task defers to the standard provider's
DateTimeTrigger once per deferral of its real task, sleeping that deferral's job seconds, and returns the
[start, end] epoch spans of its sleeps (its "jobs", read back from XCom).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TWIN_PREFIX = "twin__"

HEADER = '''"""Twin of {dag_id} (benchmarks/airflow_overhead_floor.py): same graph, tasks that only defer."""

import datetime as dt
import time

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import DAG, BaseBranchOperator, BaseOperator, TaskGroup, task_group
from airflow.sdk.exceptions import AirflowSkipException


class Twin(BaseOperator):
    """Defers once per planned sleep (seconds, per map index); returns the sleeps' [start, end] spans."""

    template_fields = ("item",)

    def __init__(self, *, sleeps, skip=False, item=None, **kwargs):
        super().__init__(**kwargs)
        self.sleeps, self.skip, self.item = sleeps, skip, item

    def execute(self, context):
        return self.resume(context)

    def resume(self, context, step=0, spans=(), event=None):
        plan = self.sleeps[min(max(context["ti"].map_index, 0), len(self.sleeps) - 1)]
        if step < len(plan):
            now = time.time()
            moment = dt.datetime.fromtimestamp(now + plan[step], dt.timezone.utc)
            self.defer(
                trigger=DateTimeTrigger(moment=moment),
                method_name="resume",
                kwargs={{"step": step + 1, "spans": [*spans, [now, now + plan[step]]]}},
            )
        if self.skip:
            raise AirflowSkipException("skipped in the real run")
        return list(spans)


class TwinBranch(Twin, BaseBranchOperator):
    """A branch point: follows the tasks the real run followed; returns no spans."""

    def __init__(self, *, follow, **kwargs):
        super().__init__(**kwargs)
        self.follow = follow

    def execute(self, context):
        BaseBranchOperator.execute(self, context)
        return []  # no sleeps (a branch point never defers); not the followed ids, which are no spans

    def choose_branch(self, context):
        return self.follow


T = {{}}
with DAG(dag_id={twin_id!r}, schedule=None, max_active_tasks={max_active_tasks}, tags=["twin"]):
'''


@dataclass
class TaskShape:
    task_id: str  # full id, group prefix included
    group: str | None
    group_mapped: bool
    mapped: bool
    upstream: list[str]
    trigger_rule: str
    teardown: bool
    setup: bool
    branch: bool
    deferrable: bool


@dataclass
class TaskPlan:
    """What the real run did with a task: per map index, the job seconds of each deferral."""

    sleeps: list[list[float]] = field(default_factory=lambda: [[]])
    skip: bool = False  # ran and skipped itself
    follow: list[str] | None = None  # a branch point: the direct downstream tasks it followed


def dag_shape(dag) -> list[TaskShape]:
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.sdk.bases.branch import (
        BranchMixIn,
    )  # the SDK's: what BranchPythonOperator and @task.branch are
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    shapes = []
    for task in dag.topological_sort():
        group = task.task_group if task.task_group and task.task_group.group_id else None
        if group is not None and group.parent_group and group.parent_group.group_id:
            raise ValueError(f"{dag.dag_id}.{task.task_id}: nested task groups are not twinned")
        kind = task.operator_class if isinstance(task, MappedOperator) else type(task)
        shapes.append(
            TaskShape(
                task_id=task.task_id,
                group=group.group_id if group else None,
                group_mapped=isinstance(group, MappedTaskGroup),
                mapped=isinstance(task, MappedOperator) and not isinstance(group, MappedTaskGroup),
                upstream=sorted(task.upstream_task_ids),
                trigger_rule=str(
                    task.trigger_rule.value if hasattr(task.trigger_rule, "value") else task.trigger_rule
                ),
                teardown=task.is_teardown,
                setup=task.is_setup,
                branch=isinstance(kind, type) and issubclass(kind, (BranchMixIn, ShortCircuitOperator)),
                deferrable=_deferrable(task, MappedOperator),
            )
        )
    return shapes


def _deferrable(task, mapped_operator: type) -> bool:
    """Whether the task defers by its own settings. A mapped task's operator may set `deferrable` in its
    __init__ (orchard's SageMaker job operators: setdefault True), which partial() kwargs do not show: the
    task unmapped with its expanded arguments left None says (no DAG change: an unmapped copy is not added)."""
    if not isinstance(task, mapped_operator):
        return bool(getattr(task, "deferrable", False))
    if "deferrable" in task.partial_kwargs:
        return bool(task.partial_kwargs["deferrable"])
    expanded = getattr(task._get_specified_expand_input(), "value", {})
    return bool(getattr(task.unmap(dict.fromkeys(expanded)), "deferrable", False))


def default_plan(shapes: list[TaskShape], job_seconds: float, map_count: int) -> dict[str, TaskPlan]:
    """Without a real run: one deferral of `job_seconds` per deferrable task, `map_count` map indexes."""
    plans = {}
    for shape in shapes:
        n = map_count if shape.mapped or shape.group_mapped else 1
        plans[shape.task_id] = TaskPlan(sleeps=[[job_seconds] if shape.deferrable else [] for _ in range(n)])
    return plans


def twin_source(dag, shapes: list[TaskShape], plans: dict[str, TaskPlan]) -> str:
    """The twin DAG file of `dag`: same graph, Twin tasks, one defer per real deferral."""
    twin_id = TWIN_PREFIX + dag.dag_id
    lines = [HEADER.format(dag_id=dag.dag_id, twin_id=twin_id, max_active_tasks=dag.max_active_tasks)]
    groups: dict[str | None, list[TaskShape]] = {}
    for shape in shapes:
        groups.setdefault(shape.group, []).append(shape)
    for group, members in groups.items():
        mapped_group = group is not None and members[0].group_mapped
        function = f"group_{group.replace('.', '_')}" if group else ""
        if mapped_group:
            lines.append(f"    @task_group(group_id={group!r})\n    def {function}(item):")
        elif group is not None:
            lines.append(f"    with TaskGroup(group_id={group!r}):")
        indent = "        " if group is not None else "    "
        for shape in members:
            lines.append(indent + _task_line(shape, plans[shape.task_id], group))
        if mapped_group:
            count = max(len(plans[s.task_id].sleeps) for s in members)
            lines.append(f"    {function}.expand(item={list(range(count))!r})")
    for shape in shapes:
        lines += [f"    T[{up!r}] >> T[{shape.task_id!r}]" for up in shape.upstream]
        if shape.teardown:
            setups = ", ".join(f"T[{s.task_id!r}]" for s in shapes if s.setup and s.task_id in shape.upstream)
            lines.append(f"    T[{shape.task_id!r}].as_teardown(setups=[{setups}])")
    return "\n".join(lines) + "\n"


def _task_line(shape: TaskShape, plan: TaskPlan, group: str | None) -> str:
    short_id = shape.task_id.removeprefix(f"{group}.") if group else shape.task_id
    kwargs = [f"task_id={short_id!r}", f"sleeps={plan.sleeps!r}"]
    if plan.skip:
        kwargs.append("skip=True")
    if not shape.teardown and shape.trigger_rule != "all_success":
        kwargs.append(f"trigger_rule={shape.trigger_rule!r}")
    cls = "Twin"
    if shape.branch and not shape.mapped:
        cls = "TwinBranch"
        kwargs.append(f"follow={plan.follow or []!r}")
    made = f"{cls}({', '.join(kwargs)}{', item=item' if shape.group_mapped else ''})"
    if shape.mapped:
        made = f"{cls}.partial({', '.join(kwargs)}).expand(item={list(range(len(plan.sleeps)))!r})"
    return f"T[{shape.task_id!r}] = {made}"
