"""The DAG integrity rules (docs/architecture.md, "Conventions for DAGs"), one function per rule.

Each rule returns a list of problems, one sentence each, naming the file or task and the fix; an empty
list means the rule holds. test_dag_integrity.py applies them to every file in dags/ and proves each one
against the samples in tests/dags/samples/.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk import DAG, BaseSensorOperator, Param, XComArg
from airflow.sdk.definitions._internal.abstractoperator import DEFAULT_OWNER, DEFAULT_RETRY_DELAY
from airflow.sdk.definitions.mappedoperator import MappedOperator

from tests.dags.parse_budget import IMPORT_BUDGET_MS, PARSE_BUDGET_MS, ParseTiming

AWS_MODULE_PREFIXES = ("airflow.providers.amazon.", "orchard.operators")
NAMING_MACRO = "aws_name"
NAMING_FIX = (
    f"build it with orchard.naming: a template \"{{{{ {NAMING_MACRO}('<kind>', dag.dag_id, run_id) }}}}\" "
    "(with user_defined_macros=naming.MACROS) or an XComArg from a task that calls naming.resource_name(), "
    "so that a retry finds the job it already started"
)

# Where operators take the name of the AWS job or resource they create, as paths into their fields
# ("*" = every item of a list). Matched on the class and its bases, so subclasses are covered too.
NAME_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "BatchOperator": (("job_name",),),
    "EmrCreateJobFlowOperator": (("job_flow_overrides", "Name"),),
    "EmrAddStepsOperator": (("steps", "*", "Name"),),
}
# SageMaker operators (and orchard's, which follow them) pass boto3 request dicts in `config`, nested
# for the combined operators (Endpoint: {"Model", "EndpointConfig", "Endpoint"}; Transform: {"Model",
# "Transform"}): every one of these keys, at any depth, names a job or resource.
CONFIG_NAME_KEYS = frozenset(
    {
        "TrainingJobName",
        "ProcessingJobName",
        "TransformJobName",
        "HyperParameterTuningJobName",
        "EndpointName",
        "EndpointConfigName",
        "ModelName",
        "CompilationJobName",
        "LabelingJobName",
    }
)


# --- loading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedFile:
    path: Path
    dags: tuple[DAG, ...]
    import_errors: tuple[str, ...]  # verbatim, as the Airflow UI would show them


@functools.cache
def load(path: Path) -> LoadedFile:
    """Parse one file as the DAG processor does: a bag of that file, its folder on sys.path."""
    bag = BundleDagBag(dag_folder=str(path), bundle_path=path.parent)
    return LoadedFile(path, tuple(bag.dags.values()), tuple(bag.import_errors.values()))


# --- file rules --------------------------------------------------------------------------------------


def import_problems(loaded: LoadedFile) -> list[str]:
    """The file imports with no error and defines at least one DAG."""
    if loaded.import_errors:
        return [f"{loaded.path.name} does not import:\n{error}" for error in loaded.import_errors]
    if not loaded.dags:
        return [
            f"{loaded.path.name} defines no DAG: dags/ holds one file per pipeline, helpers go to plugins/"
        ]
    return []


def parse_budget_problems(timing: ParseTiming) -> list[str]:
    """Imports beyond airflow.sdk and the file's own top-level work stay within budget."""
    if timing.error:
        return []  # a file that does not load is import_problems' to report
    problems = []
    if not timing.imports_within_budget:
        problems.append(
            f"{timing.path.name} imports cost {timing.import_ms:.0f} ms beyond airflow.sdk (budget "
            f"{IMPORT_BUDGET_MS:.0f} ms): import heavy libraries (pandas, torch, boto3 clients...) inside "
            "the task that needs them, not at the top of the DAG file"
        )
    if not timing.parse_within_budget:
        problems.append(
            f"{timing.path.name} takes {timing.parse_ms:.0f} ms to parse once its imports are loaded "
            f"(budget {PARSE_BUDGET_MS:.0f} ms): move top-level work (AWS calls, Variables, file reads, "
            "loops) into tasks or templates"
        )
    return problems


# --- DAG rules ---------------------------------------------------------------------------------------


def deferrable_problems(dag: DAG) -> list[str]:
    """Every waiting operator defers: `deferrable=True` wherever it is offered, and sensors always."""
    problems = []
    for task in dag.tasks:
        cls = _operator_class(task)
        takes_deferrable = _offers_deferrable(task, cls)
        if takes_deferrable and _field(task, "deferrable") is not True:
            problems.append(
                f"task '{task.task_id}' ({cls.__name__}) would hold a worker slot while it waits: "
                "pass deferrable=True"
            )
        elif not takes_deferrable and issubclass(cls, BaseSensorOperator):
            problems.append(
                f"task '{task.task_id}' ({cls.__name__}) is a sensor that cannot defer: use a sensor or "
                "operator that takes deferrable=True, or wait in a trigger (orchard.triggers)"
            )
    return problems


def metadata_problems(dag: DAG) -> list[str]:
    """The DAG documents itself: doc_md, tags, an owner, and typed params for the trigger form."""
    problems = []
    if not (dag.doc_md or "").strip():
        problems.append(f"DAG '{dag.dag_id}' has no doc_md: say what it does, inputs, outputs, cost, IAM")
    if not dag.tags:
        problems.append(f"DAG '{dag.dag_id}' has no tags: pass tags=[...]")
    if DEFAULT_OWNER in _owners(dag):
        problems.append(
            f"DAG '{dag.dag_id}' is owned by the default '{DEFAULT_OWNER}': set "
            "default_args={'owner': '<team>'}"
        )
    problems += _params_problems(dag)
    return problems


def retry_problems(dag: DAG) -> list[str]:
    """AWS-facing tasks retry (throttling, capacity) with a deliberate delay or exponential backoff."""
    problems = []
    for task in dag.tasks:
        if not _is_aws_facing(task):
            continue
        missing = []
        if (task.retries or 0) < 1:
            missing.append(f"retries={task.retries}")
        # Every task has a retry_delay (the configured default); only a chosen one or backoff counts.
        if not (task.retry_exponential_backoff or task.retry_delay != DEFAULT_RETRY_DELAY):
            missing.append("no retry_delay or retry_exponential_backoff")
        if missing:
            problems.append(
                f"task '{task.task_id}' ({_operator_class(task).__name__}) talks to AWS with "
                f"{' and '.join(missing)}: set retries >= 1 and retry_exponential_backoff "
                "(or retry_delay) in default_args or on the task"
            )
    return problems


def naming_problems(dag: DAG) -> list[str]:
    """AWS job and resource names come from orchard.naming, as an XComArg or an aws_name() template."""
    problems, uses_macro = [], False
    for task in dag.tasks:
        for label, value in _resource_names(task):
            if isinstance(value, XComArg):
                continue  # computed by a task
            if _is_naming_template(value):
                uses_macro = True
                continue
            shown = "missing" if value is _MISSING else f"the literal {value!r}"
            problems.append(
                f"task '{task.task_id}' ({_operator_class(task).__name__}) {label} is {shown}: {NAMING_FIX}"
            )
    if uses_macro and NAMING_MACRO not in (dag.user_defined_macros or {}):
        problems.append(
            f"DAG '{dag.dag_id}' templates names with {NAMING_MACRO}() but does not define it: pass "
            "user_defined_macros=naming.MACROS (from orchard import naming)"
        )
    return problems


DAG_RULES: dict[str, Callable[[DAG], list[str]]] = {
    "deferrable": deferrable_problems,
    "metadata": metadata_problems,
    "retries": retry_problems,
    "naming": naming_problems,
}


def problems_by_rule(path: Path, timing: ParseTiming) -> dict[str, list[str]]:
    """Every rule applied to one file: {rule: problems}."""
    loaded = load(path)
    found = {"imports": import_problems(loaded), "parse_budget": parse_budget_problems(timing)}
    for rule, check in DAG_RULES.items():
        found[rule] = [problem for dag in loaded.dags for problem in check(dag)]
    return found


# --- helpers -----------------------------------------------------------------------------------------

_MISSING = object()


def _operator_class(task) -> type:
    return task.operator_class if isinstance(task, MappedOperator) else type(task)


def _offers_deferrable(task, cls: type) -> bool:
    """A `deferrable` parameter, or attribute (a subclass may pass it on through **kwargs)."""
    return (
        "deferrable" in inspect.signature(cls.__init__).parameters
        or _field(task, "deferrable") is not _MISSING
    )


def _field(task, name: str) -> Any:
    """A constructor argument of a task; a list when a mapped task expands it over literal values."""
    values = _field_values(task, name)
    return values[0] if len(values) == 1 else values


def _field_values(task, name: str) -> list[Any]:
    """The values an argument takes: one, or one per mapped task instance (mapped tasks keep them raw)."""
    if not isinstance(task, MappedOperator):
        return [getattr(task, name, _MISSING)]
    if name in task.partial_kwargs:
        return [task.partial_kwargs[name]]
    expanded = getattr(task.expand_input, "value", None)
    if isinstance(expanded, XComArg):  # expand_kwargs() over a task's output: computed by that task
        return [expanded]
    if isinstance(expanded, dict) and name in expanded:  # expand(name=...)
        value = expanded[name]
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(expanded, (list, tuple)):  # expand_kwargs([{...}, ...])
        return [kwargs.get(name, _MISSING) if isinstance(kwargs, dict) else kwargs for kwargs in expanded]
    parameter = inspect.signature(task.operator_class.__init__).parameters.get(name)
    if parameter is None or parameter.default is parameter.empty:
        return [_MISSING]
    return [parameter.default]


def _owners(dag: DAG) -> set[str]:
    owners = {(task.owner or DEFAULT_OWNER) for task in dag.tasks}
    return owners or {(dag.default_args or {}).get("owner") or DEFAULT_OWNER}


def _params_problems(dag: DAG) -> list[str]:
    if not dag.params:
        return [
            f"DAG '{dag.dag_id}' has no params: expose every knob an operator may change as a Param "
            "with a JSON schema (enum, minimum/maximum, pattern)"
        ]
    untyped = [key for key in dag.params if "type" not in _schema(dag.params.get_param(key))]
    return [
        f"DAG '{dag.dag_id}' param '{key}' has no JSON-schema type: Param(default, type=..., ...)"
        for key in untyped
    ]


def _schema(param: Param) -> dict:
    return getattr(param, "schema", None) or {}


def _is_aws_facing(task) -> bool:
    return any(cls.__module__.startswith(AWS_MODULE_PREFIXES) for cls in _operator_class(task).__mro__)


def _is_naming_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value and f"{NAMING_MACRO}(" in value


def _resource_names(task) -> Iterator[tuple[str, Any]]:
    """(label, value) of every job/resource name the task will send to AWS."""
    cls = _operator_class(task)
    bases = {base.__name__ for base in cls.__mro__}
    for class_name, paths in NAME_FIELDS.items():
        if class_name in bases:
            for path in paths:
                for value in _field_values(task, path[0]):
                    yield from _values_at(value, path[1:], path[0])
    is_orchard = cls.__module__.startswith("orchard.operators")
    if "SageMakerBaseOperator" in bases or is_orchard:
        for config in _field_values(task, "config"):
            if config is not _MISSING:
                yield from _named_keys(config, "config")
    if is_orchard:
        for job_name in _field_values(task, "job_name"):
            if job_name is not _MISSING:
                yield "job_name", job_name


def _values_at(value: Any, path: tuple[str, ...], label: str) -> Iterator[tuple[str, Any]]:
    """Follow `path` into dicts/lists; a computed or templated container stands for all it holds."""
    if not path or isinstance(value, (XComArg, str)) or value is _MISSING:
        yield label, value
    elif path[0] == "*" and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _values_at(item, path[1:], f"{label}[{index}]")
    elif isinstance(value, dict):
        yield from _values_at(value.get(path[0], _MISSING), path[1:], f"{label}[{path[0]!r}]")


def _named_keys(value: Any, label: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in CONFIG_NAME_KEYS:
                yield f"{label}[{key!r}]", item
            else:
                yield from _named_keys(item, f"{label}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _named_keys(item, f"{label}[{index}]")
    # an XComArg or a template in place of the whole config: its names are computed, nothing to see
