"""Deterministic, AWS-legal resource and job names from ``dag_id`` + ``run_id``.

A name is ``<dag_id>-<run part>[-<suffix>]-<hash>``, each piece sanitised for the service:

* the run part compacts Airflow's run ids: ``manual__2026-11-21T10:00:00.123456+00:00`` becomes
  ``manual-20261121T100000``; ``asset_triggered__...+00:00_AbCd1234`` becomes ``asset-...-AbCd1234``;
  any other run id (a user-chosen one) is sanitised as it is. Logical dates are never used: asset-triggered
  runs have none, and a name must come from the run itself.
* the hash is the first 10 hex digits of sha256(``dag_id|run_id|suffix``). It is always there, because
  sanitising is lossy (``retrain_v2`` and ``retrain.v2`` both become ``retrain-v2``, SageMaker names are
  lowercased) and because truncation can cut off the only difference between two run ids: with it, two
  different inputs never share a name (40 bits: ~1e-12 odds for one pair of runs).
* when the readable pieces do not fit the service's limit they are shortened fairly (the shortest keeps
  its full length first), never the hash; the DAG id is kept whole while it takes at most half the room, so
  IAM policies can scope a pipeline's resources by the ``<dag-id>-*`` prefix.

The same inputs always give the same name, so a retried task finds the job it started on its first try.
``kind="s3_prefix"`` gives a key prefix instead: ``<dag_id>/<run part>-<hash>/[<suffix>/]``.

In templates: ``user_defined_macros=naming.MACROS``, then
``"{{ aws_name('batch_job', dag.dag_id, run_id) }}"``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

HASH_LENGTH = 10


@dataclass(frozen=True)
class NameRule:
    """One service's naming rule.

    max_length: the API's limit; allowed: regex class of one legal character; first: regex class the first
    character must match; case: "preserve" or "lower"; pattern: the whole-name regex (AWS's own where the API
    reference publishes one); separator: between pieces.
    """

    max_length: int
    allowed: str
    first: str
    case: str
    pattern: str
    separator: str = "-"


# SageMaker's published pattern for job, model, endpoint and group names: no underscores, no dots.
_SAGEMAKER = NameRule(63, "[a-zA-Z0-9-]", "[a-zA-Z0-9]", "lower", r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# Batch: "up to 128 letters ... first character must be alphanumeric ... letters, numbers, - and _".
_BATCH = NameRule(128, "[A-Za-z0-9_-]", "[A-Za-z0-9]", "preserve", r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# EMR names are any XML string up to 256 chars; we stay with characters safe in URLs and shells.
_EMR = NameRule(256, "[A-Za-z0-9_.-]", "[A-Za-z0-9]", "preserve", r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
_IOT_THING = NameRule(128, "[a-zA-Z0-9:_-]", "[a-zA-Z0-9]", "preserve", r"[a-zA-Z0-9:_-]{1,128}")

RULES: dict[str, NameRule] = {
    "batch_job": _BATCH,
    "batch_compute_environment": _BATCH,
    "batch_job_queue": _BATCH,
    "batch_job_definition": _BATCH,
    "sagemaker_training_job": _SAGEMAKER,
    "sagemaker_processing_job": _SAGEMAKER,
    "sagemaker_transform_job": _SAGEMAKER,
    "sagemaker_compilation_job": _SAGEMAKER,
    "sagemaker_labeling_job": _SAGEMAKER,
    "sagemaker_model": NameRule(
        63, "[a-zA-Z0-9-]", "[a-zA-Z0-9]", "lower", r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
    ),
    "sagemaker_endpoint": _SAGEMAKER,
    "sagemaker_endpoint_config": _SAGEMAKER,
    "sagemaker_model_package_group": _SAGEMAKER,
    "emr_cluster": _EMR,
    "emr_step": _EMR,
    "iot_job": NameRule(64, "[a-zA-Z0-9_-]", "[a-zA-Z0-9]", "preserve", r"[a-zA-Z0-9_-]{1,64}"),
    "iot_thing": _IOT_THING,
    "iot_thing_group": _IOT_THING,
    # Secrets Manager: "/_+=.@-" allowed; a name must not end in "-" + 6 characters (ARN suffix confusion):
    # ours end in "/" + 10 hex digits.
    "secret": NameRule(
        512,
        "[A-Za-z0-9/_+=.@-]",
        "[A-Za-z0-9]",
        "preserve",
        r"(?!.*-[A-Za-z0-9]{6}$)[A-Za-z0-9/_+=.@-]{1,512}",
        "/",
    ),
    # A key prefix: lowercase-safe segments joined by "/", ending with "/"; room left for file names.
    "s3_prefix": NameRule(512, "[a-z0-9._-]", "[a-z0-9]", "lower", r"([a-z0-9][a-z0-9._-]*/)+", "/"),
}

# Airflow's run types (DagRunType) shortened; unknown types are kept as they are.
_RUN_TYPES = {
    "manual": "manual",
    "scheduled": "scheduled",
    "backfill": "backfill",
    "asset_triggered": "asset",
    "dataset_triggered": "dataset",
    "operator_triggered": "triggered",
    "asset_materialization": "materialize",
}
_RUN_ID = re.compile(
    r"(?P<type>[a-z_]+?)__(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?P<rest>.*)",
    re.DOTALL,
)


def resource_name(kind: str, dag_id: str, run_id: str, suffix: str = "") -> str:
    """The AWS name of kind ``kind`` (a key of ``RULES``) for this DAG run, deterministic and unique."""
    rule = _rule(kind)
    _require(dag_id, "dag_id")
    _require(run_id, "run_id")
    if not isinstance(suffix, str):
        raise ValueError(f"suffix must be a string, got {type(suffix).__name__}")
    if kind == "s3_prefix":
        return _s3_prefix(rule, dag_id, run_id, suffix)
    digest = _digest(dag_id, run_id, suffix)
    pieces = [p for p in (_clean(x, rule) for x in (dag_id, run_part(run_id), suffix)) if p]
    room = rule.max_length - len(digest) - len(rule.separator) * len(pieces)
    dag_piece = _clean(dag_id, rule)
    if pieces and pieces[0] == dag_piece and len(dag_piece) <= room // 2:
        # The DAG id stays whole: IAM policies scope a pipeline's jobs by the "<dag-id>-*" name prefix
        # (include/iam/*.json); the run part and suffix share what is left.
        return rule.separator.join([dag_piece, *_fit(pieces[1:], room - len(dag_piece)), digest])
    return rule.separator.join([*_fit(pieces, room), digest])


def run_part(run_id: str) -> str:
    """Readable part of a run id: ``manual__2026-11-21T10:00:00.1+00:00`` -> ``manual-20261121T100000``."""
    match = _RUN_ID.fullmatch(run_id)
    if not match:
        return run_id
    stamp = f"{match['date'].replace('-', '')}T{match['time'].replace(':', '')}"
    run_type = _RUN_TYPES.get(match["type"], match["type"])
    rest = match["rest"].strip("_-")
    return "-".join(p for p in (run_type, stamp, rest) if p)


def _rule(kind: str) -> NameRule:
    try:
        return RULES[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown resource kind {kind!r}; expected one of: {', '.join(sorted(RULES))}"
        ) from None


def _require(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _digest(dag_id: str, run_id: str, suffix: str) -> str:
    return hashlib.sha256(f"{dag_id}|{run_id}|{suffix}".encode()).hexdigest()[:HASH_LENGTH]


_DASHES = re.compile(r"-{2,}")
# Every non-alphanumeric character any rule allows: after cleaning, these are all that can need trimming.
_PUNCTUATION = "-_.:/+=@"


@functools.cache
def _illegal(allowed: str) -> re.Pattern[str]:
    return re.compile(f"[^{allowed[1:-1]}]")  # "[a-z0-9-]" -> "[^a-z0-9-]"


def _clean(text: str, rule: NameRule) -> str:
    """Legal characters only: others become "-", runs of "-" collapse, punctuation is trimmed off the ends."""
    text = text[: rule.max_length * 2]  # no piece can use more; bounds the work on huge run ids
    if rule.case == "lower":
        text = text.lower()
    return _trim(_DASHES.sub("-", _illegal(rule.allowed).sub("-", text)))


def _trim(text: str) -> str:
    return text.strip(_PUNCTUATION)


def _fit(pieces: list[str], room: int) -> list[str]:
    """Shorten pieces to fit ``room`` characters, water-filling: short pieces keep their whole length."""
    if sum(map(len, pieces)) <= room:
        return pieces
    limits = [0] * len(pieces)
    left = max(room, 0)
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    for rank, index in enumerate(order):
        limits[index] = min(len(pieces[index]), left // (len(pieces) - rank))
        left -= limits[index]
    cut = [_trim(piece[:limit]) for piece, limit in zip(pieces, limits, strict=True)]
    return [piece for piece in cut if piece]


def _s3_prefix(rule: NameRule, dag_id: str, run_id: str, suffix: str) -> str:
    # The run folder's hash leaves the suffix out, so all of a run's sub-prefixes nest under one folder.
    dag = _trim(_clean(dag_id, rule)[:150]) or "dag"
    run = "-".join(p for p in (_trim(_clean(run_part(run_id), rule)[:100]), _digest(dag_id, run_id, "")) if p)
    tail = [part for part in (_clean(segment, rule) for segment in suffix.split("/")) if part]
    prefix = "/".join([dag, run, *tail]) + "/"
    if len(prefix) > rule.max_length:
        raise ValueError(
            f"s3_prefix suffix {suffix[:40]!r}... makes a {len(prefix)}-char prefix, over {rule.max_length}"
        )
    return prefix


MACROS = {"aws_name": resource_name}
