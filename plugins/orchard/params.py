"""The trigger form's building blocks: one set of Param builders, one rule per kind of value, every DAG.

Each builder returns an ``airflow.sdk.Param`` whose JSON schema the UI's form and Airflow's trigger check
(``dag.params.deep_merge(conf).validate()`` in ``create_dagrun``) apply, with a ``description`` giving the
format and an example, and a ``section`` (Airflow's trigger form groups params by ``schema.section``).

* ``s3_object`` / ``s3_folder`` / ``s3_uri``: S3 URIs with a real bucket name and no surrounding spaces.
  A folder always ends in ``/``: ``s3://b/cam1`` would also list ``cam10/`` and ``cam1-old/``.
* ``arn``, ``choice`` (instance types, enums), ``integer`` / ``number`` with bounds, ``name``,
  ``label_categories`` (non-blank, unique), ``flag``, ``text``.
* ``optional=True`` makes any of them nullable (``type: ["null", ...]``, default ``None``): the form then
  shows it as not required and submits it empty; task code reads ``None`` as "not given".

``check(params)`` is the first task's re-check: every param against its schema again, in plain words
naming the param, plus what a schema cannot say (S3 key length in bytes, categories equal but for case,
rules across params). It raises ``orchard.errors.InputError`` listing every problem at once.

``default_overrides(dag_id)`` lets a local stack make the form's defaults its demo's: ``make up`` (and
``make demo``, for the DAGs its uploads start) writes ``{dag_id: {param: value}}`` to a JSON file named by
``ORCHARD_PARAM_DEFAULTS``. Read at parse time from
that file only (no Variable, no API call); unset on AWS, where the defaults stay as written.

S3 rules: "General purpose bucket naming rules", Amazon S3 User Guide,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html ; key length: "Naming Amazon
S3 objects", https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html (up to 1,024 bytes of
UTF-8). ARN format: "Identify AWS resources with Amazon Resource Names (ARNs)", IAM User Guide,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html .
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from airflow.sdk import Param
from airflow.sdk.definitions._internal.types import NOTSET, is_arg_set
from airflow.sdk.exceptions import ParamValidationError

from orchard.errors import InputError

# ---- patterns (JSON-schema `pattern`: ECMA 262 and Python `re` read them alike) ----------------------

# No leading or trailing white space anywhere (`$` also matches before a final newline in Python: the
# look-ahead refuses that newline too).
_TRIMMED = r"(?!\s)(?![\s\S]*\s$)"
# A general purpose bucket: 3-63 of a-z 0-9 . -, alphanumeric at both ends, no "..", not an IP address,
# not starting xn-- or sthree- (bucketnamingrules.html). Reserved alias suffixes (-s3alias, --x-s3...)
# stay allowed: access point aliases and directory buckets are used wherever a bucket name is.
BUCKET = (
    r"(?!xn--)(?!sthree-)(?!\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/)(?![^/]*\.\.)"
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
)
# A key never starts with "/" (s3://b//k is a join mistake) and has no line breaks.
S3_URI = rf"^{_TRIMMED}s3://{BUCKET}/[^/\s].*$"
S3_OBJECT = rf"^{_TRIMMED}s3://{BUCKET}/[^/\s](?:.*[^/])?$"
S3_FOLDER = rf"^{_TRIMMED}s3://{BUCKET}/(?:[^/\s].*/)?$"
_PARTITION = r"aws(?:-cn|-us-gov|-iso(?:-[a-z])?)?"
NON_BLANK = rf"^{_TRIMMED}.+$"

S3_PATTERNS = {S3_URI, S3_OBJECT, S3_FOLDER}  # and each s3_object_pattern(suffixes) built

S3_KEY_MAX_BYTES = 1024  # object-keys.html: "The name for a key ... up to 1,024 bytes long"

EXAMPLE_BUCKET = "orchard-data"

# Section titles: a long form shows these as collapsible groups, in this order of first use.
INPUTS = "Inputs"
MODEL = "Model"
COMPUTE = "Compute"
TRAINING = "Training"
OUTPUTS = "Outputs"
ROLLOUT = "Rollout"
APPROVAL = "Approval"
ADVANCED = "Advanced"


def s3_object_pattern(suffixes: Sequence[str] = ()) -> str:
    """S3_OBJECT, the key ending in one of ``suffixes`` (e.g. ``(".tar.gz", ".tgz")``) when given."""
    if not suffixes:
        return S3_OBJECT
    ends = "|".join(re.escape(s) for s in suffixes)
    pattern = rf"^{_TRIMMED}s3://{BUCKET}/[^/\s].*(?:{ends})$"
    S3_PATTERNS.add(pattern)
    return pattern


def is_s3_pattern(pattern: str) -> bool:
    """Whether ``pattern`` is one of this module's S3 URI patterns (the only ones a DAG may use)."""
    return pattern in S3_PATTERNS


def arn_pattern(service: str, resource: str = r"\S+", *, region: bool = True, account: bool = True) -> str:
    """``arn:<partition>:<service>:<region>:<account>:<resource>`` (reference-arns.html)."""
    region_part = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}" if region else ""
    account_part = r"\d{12}" if account else ""
    return rf"^arn:{_PARTITION}:{re.escape(service)}:{region_part}:{account_part}:{resource}$"


# What each pattern means, in the words check() uses, with an example.
_KINDS: dict[str, tuple[str, str]] = {
    S3_URI: ("an S3 URI s3://<bucket>/<key>", f"s3://{EXAMPLE_BUCKET}/path/file"),
    S3_OBJECT: ("an S3 object URI s3://<bucket>/<key> (not a folder)", f"s3://{EXAMPLE_BUCKET}/path/file"),
    S3_FOLDER: ("an S3 folder URI ending in '/'", f"s3://{EXAMPLE_BUCKET}/path/folder/"),
    NON_BLANK: ("a non-blank value with no leading or trailing spaces", "pedestrian"),
}


# ---- builders ------------------------------------------------------------------------------------------


def _copied_sharing_schema(param: Param, memo: dict[int, Any]) -> Param:
    copied = object.__new__(Param)  # no __init__: its JSON check already passed on this value
    copied.__dict__.update(param.__dict__)
    copied.value = copy.deepcopy(param.value, memo)
    return _cheap_to_copy(copied)


def _resolved_against_checked_schema(
    param: Param, value: Any = NOTSET, suppress_exception: bool = False
) -> Any:
    """``Param.resolve`` (airflow/sdk/definitions/param.py), less one step: re-checking the param's schema
    against the JSON Schema meta-schema, which ``jsonschema.validate`` does on every call before it checks
    the value (~0.2 ms of each ~0.25 ms call here; Airflow resolves every param of a scheduled DAG at each
    parse). The schemas are built by this module's builders and each DAG's are checked against the
    meta-schema by the tests (tests/dags/test_params.py); the API server's trigger check
    (``SerializedParam.resolve``) still runs the full ``validate``. The value is checked by the same
    validator class, format checker and error choice (``best_match``) as ``jsonschema.validate``, so
    the result and the error message are the same: tests/dags/test_params.py compares them."""
    from jsonschema import FormatChecker, exceptions, validators

    if value is not NOTSET:
        param._check_json(value)
    final_val = param.value if value is NOTSET else value
    if not is_arg_set(final_val):
        if suppress_exception:
            return None
        raise ParamValidationError("No value passed and Param has no default value")
    validator = validators.validator_for(param.schema)(param.schema, format_checker=FormatChecker())
    error = exceptions.best_match(validator.iter_errors(final_val))
    if error is not None:
        if suppress_exception:
            return None
        raise ParamValidationError(error) from None
    param.value = final_val
    return final_val


def _cheap_to_copy(param: Param) -> Param:
    """``param``, whose deep copies share its schema and description and copy only its value, and whose
    ``resolve`` checks the value without re-checking the schema (``_resolved_against_checked_schema``).

    Airflow deep-copies the DAG's params for every operator at every level of its class hierarchy
    (``get_merged_defaults`` in ``apply_defaults``): ~60 copies of every param per parse of a 15-task DAG,
    nearly all of it copying schemas (patterns, enums, sections) that nothing changes once built here.
    Both are set on the instance (``copy.deepcopy`` looks ``__deepcopy__`` up on the object) so the
    param stays an ``airflow.sdk.Param``: Airflow serializes only params of exactly that class as they are
    (``_serialize_params_dict``); the serialized DAGs are byte-identical either way."""
    param.__deepcopy__ = functools.partial(_copied_sharing_schema, param)  # type: ignore[attr-defined]
    param.resolve = functools.partial(_resolved_against_checked_schema, param)  # type: ignore[method-assign]
    return param


def _param(
    default: Any,
    json_type: str | list[str],
    description: str,
    section: str | None,
    optional: bool,
    **schema: Any,
) -> Param:
    types = [json_type] if isinstance(json_type, str) else list(json_type)
    if optional:
        types = ["null", *[t for t in types if t != "null"]]
        description = f"{description} Leave empty: {schema.pop('empty_means', 'not used')}."
    else:
        schema.pop("empty_means", None)
    if section:
        schema["section"] = section
    kinds = types if len(types) > 1 else types[0]
    return _cheap_to_copy(Param(default, description=description, type=kinds, **schema))


def s3_uri(
    default: str | None = None,
    *,
    description: str,
    example: str | None = None,
    section: str | None = INPUTS,
    optional: bool = False,
    empty_means: str = "not used",
) -> Param:
    """Any S3 URI s3://<bucket>/<key> (object or folder)."""
    example = example or f"s3://{EXAMPLE_BUCKET}/path/file"
    return _param(
        default,
        "string",
        f"{description} Format s3://<bucket>/<key>, e.g. {example}.",
        section,
        optional,
        pattern=S3_URI,
        empty_means=empty_means,
    )


def s3_object(
    default: str | None = None,
    *,
    description: str,
    suffixes: Sequence[str] = (),
    example: str | None = None,
    section: str | None = INPUTS,
    optional: bool = False,
    empty_means: str = "not used",
) -> Param:
    """An S3 object (not a folder), its key ending in one of ``suffixes`` when given."""
    ends = f", ending in {' or '.join(suffixes)}" if suffixes else ""
    example = example or f"s3://{EXAMPLE_BUCKET}/path/file{suffixes[0] if suffixes else ''}"
    pattern = s3_object_pattern(suffixes)
    if suffixes:
        _KINDS.setdefault(pattern, (f"an S3 object URI s3://<bucket>/<key>{ends}", example))
    return _param(
        default,
        "string",
        f"{description} Format s3://<bucket>/<key>{ends}, e.g. {example}.",
        section,
        optional,
        pattern=pattern,
        empty_means=empty_means,
    )


def s3_folder(
    default: str | None = None,
    *,
    description: str,
    example: str | None = None,
    section: str | None = INPUTS,
    optional: bool = False,
    empty_means: str = "not used",
) -> Param:
    """An S3 folder: always ends in '/', so that it never takes in sibling folders sharing its start."""
    example = example or f"s3://{EXAMPLE_BUCKET}/path/folder/"
    return _param(
        default,
        "string",
        f"{description} An S3 folder, ending in '/', e.g. {example}.",
        section,
        optional,
        pattern=S3_FOLDER,
        empty_means=empty_means,
    )


def arn(
    default: str | None = None,
    *,
    service: str,
    resource: str = r"\S+",
    description: str,
    example: str,
    section: str | None = None,
    optional: bool = False,
    empty_means: str = "not used",
) -> Param:
    pattern = arn_pattern(service, resource)
    _KINDS.setdefault(pattern, (f"an ARN of {service}", example))
    return _param(
        default,
        "string",
        f"{description} An ARN, e.g. {example}.",
        section,
        optional,
        pattern=pattern,
        empty_means=empty_means,
    )


def name(
    default: str | None = None,
    *,
    pattern: str,
    description: str,
    example: str,
    section: str | None = None,
    optional: bool = False,
    empty_means: str = "not used",
    max_length: int | None = None,
    what: str | None = None,
) -> Param:
    """A resource name (endpoint, fleet, model package group...) with the service's own pattern; ``what``
    says it in words for check()'s messages."""
    _KINDS.setdefault(pattern, (what or f"a name matching {pattern}", example))
    extra = {"maxLength": max_length} if max_length else {}
    return _param(
        default,
        "string",
        f"{description} E.g. {example}.",
        section,
        optional,
        pattern=pattern,
        empty_means=empty_means,
        **extra,
    )


def text(
    default: str | None = None,
    *,
    description: str,
    example: str,
    pattern: str = NON_BLANK,
    section: str | None = None,
    optional: bool = False,
    empty_means: str = "not used",
    max_length: int | None = None,
) -> Param:
    """Free text with no surrounding spaces (or a stricter ``pattern``)."""
    _KINDS.setdefault(pattern, (f"text matching {pattern}", example))
    extra = {"maxLength": max_length} if max_length else {}
    return _param(
        default,
        "string",
        f"{description} E.g. {example}.",
        section,
        optional,
        pattern=pattern,
        empty_means=empty_means,
        **extra,
    )


def choice(
    default: str | None,
    options: Iterable[str],
    *,
    description: str,
    section: str | None = None,
    optional: bool = False,
    empty_means: str = "not used",
) -> Param:
    """One of ``options`` (instance types, formats): the form shows a drop-down."""
    values = list(options)
    if optional:
        values = [None, *values]
    return _param(default, "string", description, section, optional, enum=values, empty_means=empty_means)


def instance_type(
    default: str,
    options: Iterable[str],
    *,
    description: str = "Instance type.",
    section: str | None = COMPUTE,
) -> Param:
    return choice(default, options, description=description, section=section)


def integer(
    default: int | None,
    *,
    minimum: int = 1,
    maximum: int,
    description: str,
    section: str | None = None,
    optional: bool = False,
    empty_means: str = "not used",
    **schema: Any,
) -> Param:
    """An integer within [minimum, maximum] (positive by default)."""
    return _param(
        default,
        "integer",
        f"{description} {minimum} to {maximum}.",
        section,
        optional,
        minimum=minimum,
        maximum=maximum,
        empty_means=empty_means,
        **schema,
    )


POLL_SECONDS_DEFAULT = 30


def poll_seconds(default: int = POLL_SECONDS_DEFAULT) -> Param:
    """The one poll setting of every pipeline: seconds between status polls of its AWS jobs and resources.

    Operators take it as a template ("{{ params.poll_seconds }}"); `make up` and `make demo` lower the default
    for the local stack through ORCHARD_PARAM_DEFAULTS. Waits size their attempt counts from it and the job's time limit."""
    return integer(
        default,
        maximum=600,
        section=ADVANCED,
        description="Seconds between status polls of the run's AWS jobs (AWS bills the job, not the polls).",
    )


APPROVAL_TIMEOUT_HOURS_DEFAULT = 24


def approval(gated: str) -> dict[str, Param]:
    """The human gate's two params, ``require_approval`` and ``approval_timeout_hours``, for a DAG whose step
    ``gated`` (e.g. "registering the model") waits for a person's approval (orchard.operators.approval).

    On by default (a production run waits for a person); automated runs (the demo, tests, schedules) turn
    it off. Unpack into the DAG's params: ``{..., **form.approval("registering the model")}``."""
    return {
        "require_approval": flag(
            True,
            section=APPROVAL,
            description=f"Wait for a person to approve {gated} (Airflow UI: Required Actions, or the REST "
            "API). Off: the run goes ahead unattended, for automated runs (demo, tests).",
        ),
        "approval_timeout_hours": integer(
            APPROVAL_TIMEOUT_HOURS_DEFAULT,
            maximum=720,
            section=APPROVAL,
            description=f"Hours the approval waits. Nobody answering in time counts as Reject: the run skips "
            f"{gated}, cleans up, reports why and ends green.",
        ),
    }


def number(
    default: float | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    description: str,
    section: str | None = None,
    optional: bool = False,
    empty_means: str = "not used",
    **schema: Any,
) -> Param:
    bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
    return _param(
        default, "number", description, section, optional, empty_means=empty_means, **bounds, **schema
    )


def flag(default: bool, *, description: str, section: str | None = None) -> Param:
    return _param(default, "boolean", description, section, False)


def label_categories(
    default: Sequence[str], *, description: str, max_items: int, section: str | None = None
) -> Param:
    """Label categories: 1 to ``max_items`` (the labeling task type's limit), each non-blank, no surrounding
    spaces, no duplicates (not even but for case: check())."""
    return _param(
        list(default),
        "array",
        f"{description} One per line, e.g. pedestrian.",
        section,
        False,
        items={"type": "string", "pattern": NON_BLANK, "maxLength": 256},
        minItems=1,
        maxItems=max_items,
        uniqueItems=True,
    )


def string_list(
    default: Sequence[str],
    *,
    item_pattern: str,
    description: str,
    example: str,
    min_items: int = 1,
    max_items: int = 100,
    section: str | None = None,
    what: str | None = None,
) -> Param:
    _KINDS.setdefault(item_pattern, (what or f"a value matching {item_pattern}", example))
    return _param(
        list(default),
        "array",
        f"{description} One per line, e.g. {example}.",
        section,
        False,
        items={"type": "string", "pattern": item_pattern},
        minItems=min_items,
        maxItems=max_items,
        uniqueItems=True,
    )


def integer_list(
    default: Sequence[int],
    *,
    minimum: int,
    maximum: int,
    description: str,
    min_items: int = 1,
    max_items: int = 5,
    section: str | None = None,
) -> Param:
    return _param(
        list(default),
        "array",
        description,
        section,
        False,
        items={"type": "integer", "minimum": minimum, "maximum": maximum},
        minItems=min_items,
        maxItems=max_items,
        uniqueItems=True,
    )


# ---- local defaults (make up) --------------------------------------------------------------------------

DEFAULTS_ENV = "ORCHARD_PARAM_DEFAULTS"


def default_overrides(dag_id: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{param: value}`` for ``dag_id`` from the JSON file ``$ORCHARD_PARAM_DEFAULTS`` names (make up
    writes it: the demo's data locations and settings), else ``{}``. A missing file counts as empty."""
    path = (os.environ if environ is None else environ).get(DEFAULTS_ENV, "").strip()
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        problem = f"{DEFAULTS_ENV}={path}: not a readable JSON file ({error}); fix or unset it"
        raise ValueError(problem) from None
    overrides = data.get(dag_id, {}) if isinstance(data, dict) else None
    if not isinstance(overrides, dict):
        raise ValueError(f"{DEFAULTS_ENV}={path}: expected {{dag_id: {{param: value}}}}; fix or unset it")
    return overrides


def with_defaults(
    dag_id: str, params: dict[str, Param], environ: Mapping[str, str] | None = None
) -> dict[str, Param]:
    """``params`` with the local stack's defaults (``default_overrides``) in place of their own. A name
    that is no param or a value its schema refuses fails the DAG's parse, naming the file and the param."""
    overrides = default_overrides(dag_id, environ)
    if not overrides:
        return params
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(
            f"{DEFAULTS_ENV}: {dag_id} has no param {', '.join(unknown)}; remove it from the file"
        )
    result = dict(params)
    for key, value in overrides.items():
        param = params[key]
        result[key] = _cheap_to_copy(Param(value, description=param.description, schema=dict(param.schema)))
        problem = _problem(key, value, param.schema)
        if problem:
            raise ValueError(f"{DEFAULTS_ENV}: {dag_id}: {problem}")
    return result


# ---- the first task's re-check -------------------------------------------------------------------------

Rule = Callable[[Mapping[str, Any]], "str | None"]


def requires(name_: str, when: str, *, because: str) -> Rule:
    """A rule: param ``name_`` must be given (not None/empty) when param ``when`` is true."""

    def rule(params: Mapping[str, Any]) -> str | None:
        if params.get(when) and params.get(name_) in (None, "", []):
            return f"{name_} is empty but {when} is on: {because}. Give {name_}, or turn {when} off."
        return None

    return rule


def one_of(*names: str) -> Rule:
    """A rule: at least one of ``names`` is given."""

    def rule(params: Mapping[str, Any]) -> str | None:
        if all(params.get(n) in (None, "", []) for n in names):
            return f"none of {', '.join(names)} is given: give one of them."
        return None

    return rule


def check(params: Mapping[str, Any], rules: Iterable[Rule] = (), *, dag: Any = None) -> dict[str, Any]:
    """Re-check a run's params before anything billable starts; raise InputError naming every bad one.

    ``dag`` (default: the running task's) gives each param's schema: values are checked against it again
    (an Asset-triggered run or ``dag.test()`` reaches tasks by other paths than the form) and then for
    what no JSON schema says: S3 keys over 1,024 UTF-8 bytes, label categories equal but for case. Then
    ``rules`` (``requires``, ``one_of`` or any ``params -> problem or None``). Returns ``params`` as a dict.
    """
    values = dict(params)
    schemas = _schemas(dag)
    problems = []
    for key, value in values.items():
        schema = schemas.get(key)
        problem = _problem(key, value, schema) if schema is not None else None
        if problem:
            problems.append(problem)
            continue
        problems += _beyond_schema(key, value, schema or {})
    problems += [problem for rule in rules if (problem := rule(values))]
    if problems:
        raise InputError("the run's params are not valid:\n- " + "\n- ".join(problems))
    return values


def _schemas(dag: Any) -> dict[str, dict]:
    if dag is None:
        try:
            from airflow.sdk import get_current_context

            dag = get_current_context().get("dag")
        except Exception:  # outside a task (unit tests): no schema, only the rules and generic checks
            return {}
    params = getattr(dag, "params", None)
    if params is None:
        return {}
    return {key: params.get_param(key).schema for key in params.keys()}


def _problem(key: str, value: Any, schema: Mapping[str, Any]) -> str | None:
    """Plain words for the first way ``value`` breaks ``schema``, or None."""
    from jsonschema import Draft202012Validator, FormatChecker

    validator = Draft202012Validator(dict(schema), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    where = key + "".join(f"[{p}]" for p in error.path)
    bad = error.instance
    keyword = error.validator
    if keyword == "pattern":
        what, example = _KINDS.get(error.validator_value, (f"a value matching {error.validator_value}", ""))
        s3 = isinstance(bad, str) and is_s3_pattern(error.validator_value)
        hint = _s3_hint(bad, error.validator_value) if s3 else ""
        shown = f", e.g. {example}" if example else ""
        return f"{where}={bad!r} is not {what}{hint}: give one{shown}"
    if keyword == "enum":
        options = ", ".join("empty" if v is None else str(v) for v in error.validator_value)
        return f"{where}={bad!r} is not one of the choices: {options}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bounded = schema if not error.path else schema.get("items", {})
        return f"{where}={bad!r} is out of range: {_bounds(bounded)}"
    if keyword == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"{where}={bad!r} has the wrong type: expected {wanted.replace('null', 'empty')}"
    if keyword == "uniqueItems":
        return f"{where} lists a value twice: {bad!r}; give each once"
    if keyword in ("minItems", "maxItems", "minLength", "maxLength"):
        return f"{where}={bad!r}: {keyword} is {error.validator_value}"
    return f"{where}={bad!r} is not valid: {error.message}"


def _bounds(schema: Mapping[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return f"give a value from {low} to {high}" if high is not None else f"give at least {low}"


def _s3_hint(value: str, pattern: str) -> str:
    """The likeliest mistake in an S3 URI a pattern refused."""
    if value != value.strip():
        return " (it has spaces or a line break at its start or end: remove them)"
    if not value.startswith("s3://"):
        return " (it must start with s3://)"
    if value.startswith("s3:///"):
        return " (the bucket is empty: s3:///... names no bucket)"
    bucket, _, key = value[5:].partition("/")
    if not re.fullmatch(BUCKET, bucket):
        return (
            f" (bucket {bucket!r} breaks S3's naming rules: 3-63 lowercase letters, digits, '.', '-', "
            "a letter or digit at both ends, no '..', not an IP address)"
        )
    if key.startswith("/"):
        return " (the key starts with '/': s3://<bucket>//... has an empty folder name)"
    if pattern == S3_FOLDER and not value.endswith("/"):
        return " (a folder must end in '/': without it S3 also lists sibling folders sharing its start)"
    if pattern != S3_FOLDER and value.endswith("/"):
        return " (it ends in '/': that is a folder, give the object's key)"
    return ""


def _beyond_schema(key: str, value: Any, schema: Mapping[str, Any]) -> list[str]:
    problems = []
    if isinstance(value, str) and value.startswith("s3://"):
        key_part = value[5:].partition("/")[2]
        if len(key_part.encode("utf-8")) > S3_KEY_MAX_BYTES:
            problems.append(
                f"{key}: the S3 key of {value[:60]}... is {len(key_part.encode())} bytes; "
                f"S3 keys are at most {S3_KEY_MAX_BYTES} bytes of UTF-8: shorten it"
            )
    items = schema.get("items", {}) if isinstance(schema, Mapping) else {}
    if isinstance(value, list) and items.get("pattern") == NON_BLANK:
        folded: dict[str, str] = {}
        for item in value:
            if isinstance(item, str):
                same = folded.setdefault(item.casefold(), item)
                if same != item:
                    problems.append(
                        f"{key} lists {same!r} and {item!r}: the same category but for case; keep one"
                    )
    return problems


# ---- DAG headers ---------------------------------------------------------------------------------------


def tags(pipeline: str, *services: str) -> list[str]:
    """One tag scheme for every DAG: ``orchard``, ``pipeline:<dag_id>``, then ``aws:<service>`` per service
    it drives (filter the UI's DAG list by any of them)."""
    return ["orchard", f"pipeline:{pipeline}", *(f"aws:{service}" for service in services)]
