"""Typed settings of the orchard DAGs: buckets, role ARNs, image registry, network, region.

Every field is looked up in this order; the first non-empty value wins:

1. the environment variable ``ORCHARD_<FIELD>`` (an empty value counts as unset, so docker-compose can
   pass ``${ORCHARD_X:-}`` through);
2. the Airflow Variable ``orchard_<field>``, only where Airflow is configured (``airflow`` already imported,
   ``AIRFLOW_HOME`` or an ``AIRFLOW__*`` variable set) and ``ORCHARD_USE_AIRFLOW_VARIABLES`` is not false.
   A Variable backend that fails (metadata DB or API server unreachable) is logged once and skipped;
3. the default below.

| Field | Environment variable | Airflow Variable | Default |
|---|---|---|---|
| region | ORCHARD_REGION, then AWS_DEFAULT_REGION | orchard_region | us-east-1 |
| aws_conn_id | ORCHARD_AWS_CONN_ID | orchard_aws_conn_id | aws_default |
| data_bucket | ORCHARD_DATA_BUCKET | orchard_data_bucket | orchard-data |
| artifacts_bucket | ORCHARD_ARTIFACTS_BUCKET | orchard_artifacts_bucket | orchard-artifacts |
| reports_bucket | ORCHARD_REPORTS_BUCKET | orchard_reports_bucket | the artifacts bucket |
| reports_prefix | ORCHARD_REPORTS_PREFIX | orchard_reports_prefix | reports/ |
| sagemaker_execution_role_arn | ORCHARD_SAGEMAKER_EXECUTION_ROLE_ARN | orchard_sagemaker_execution_role_arn | arn:aws:iam::123456789012:role/orchard-sagemaker-execution |
| batch_job_role_arn | ORCHARD_BATCH_JOB_ROLE_ARN | orchard_batch_job_role_arn | arn:aws:iam::123456789012:role/orchard-batch-job |
| batch_instance_role_arn | ORCHARD_BATCH_INSTANCE_ROLE_ARN | orchard_batch_instance_role_arn | arn:aws:iam::123456789012:instance-profile/orchard-batch-instance |
| batch_service_role_arn | ORCHARD_BATCH_SERVICE_ROLE_ARN | orchard_batch_service_role_arn | arn:aws:iam::123456789012:role/orchard-batch-service |
| emr_service_role | ORCHARD_EMR_SERVICE_ROLE | orchard_emr_service_role | orchard-emr-service |
| emr_instance_profile | ORCHARD_EMR_INSTANCE_PROFILE | orchard_emr_instance_profile | orchard-emr-instance-profile |
| ecr_registry | ORCHARD_ECR_REGISTRY | orchard_ecr_registry | 123456789012.dkr.ecr.<region>.amazonaws.com |
| image_tag | ORCHARD_IMAGE_TAG | orchard_image_tag | 0.1.0 |
| subnet_ids | ORCHARD_SUBNET_IDS (comma-separated or JSON list) | orchard_subnet_ids | () = the default VPC |
| security_group_ids | ORCHARD_SECURITY_GROUP_IDS (comma-separated or JSON list) | orchard_security_group_ids | () = the default group |

The defaults name account 123456789012 (moto's default account): they work as they are in the local sandbox
and are placeholders to replace on AWS. ``batch_instance_role_arn`` is an *instance profile* ARN because that
is what Batch's ``computeResources.instanceRole`` takes. The EMR fields are names (``RunJobFlow`` takes the
service role and the EC2 instance profile by name); ARNs are accepted too.

A malformed value raises ``ValueError`` naming the variable it came from and what a valid value looks like.
``load_settings()`` makes no AWS call; with Variables it costs one Variable lookup per field not set in the
environment, so at DAG parse time prefer ``load_settings(variables=False)`` or read settings inside tasks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

log = logging.getLogger(__name__)

# moto's default account: ARNs built on it are accepted by the local sandbox unchanged.
PLACEHOLDER_ACCOUNT = "123456789012"
ENV_PREFIX = "ORCHARD_"
VARIABLE_PREFIX = "orchard_"
USE_VARIABLES_ENV = "ORCHARD_USE_AIRFLOW_VARIABLES"

VariableGetter = Callable[[str], "str | None"]

_PARTITION = r"arn:aws(?:-cn|-us-gov|-iso|-iso-[a-z])?"
_IAM_PATH_NAME = r"(?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,128}"
_ROLE_ARN = re.compile(rf"{_PARTITION}:iam::\d{{12}}:role/{_IAM_PATH_NAME}")
_PROFILE_ARN = re.compile(rf"{_PARTITION}:iam::\d{{12}}:instance-profile/{_IAM_PATH_NAME}")
_IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
# S3 bucket naming rules: 3-63 chars, lowercase letters, digits, dots, hyphens, alnum at both ends.
_BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGISTRY = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
_S3_PREFIX = re.compile(r"(?:[A-Za-z0-9!_.*'()-]+/)*")
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_SECURITY_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")


def _role(name: str) -> str:
    return f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/{name}"


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    expected: str


_RULES: dict[str, _Rule] = {
    "region": _Rule(_REGION, "an AWS region code such as us-east-1 or eu-west-3"),
    "aws_conn_id": _Rule(_CONN_ID, "an Airflow connection id (letters, digits, '_', '-', '.')"),
    "data_bucket": _Rule(_BUCKET, "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')"),
    "artifacts_bucket": _Rule(_BUCKET, "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')"),
    "reports_bucket": _Rule(_BUCKET, "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')"),
    "reports_prefix": _Rule(_S3_PREFIX, "an S3 key prefix such as reports/ (no leading '/')"),
    "sagemaker_execution_role_arn": _Rule(_ROLE_ARN, f"an IAM role ARN such as {_role('orchard-sagemaker')}"),
    "batch_job_role_arn": _Rule(_ROLE_ARN, f"an IAM role ARN such as {_role('orchard-batch-job')}"),
    "batch_instance_role_arn": _Rule(
        _PROFILE_ARN,
        f"an IAM instance profile ARN such as "
        f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:instance-profile/ecsInstanceRole"
        " (Batch's instanceRole takes an instance profile, not a role)",
    ),
    "batch_service_role_arn": _Rule(_ROLE_ARN, f"an IAM role ARN such as {_role('orchard-batch-service')}"),
    "emr_service_role": _Rule(
        re.compile(f"{_IAM_NAME.pattern}|{_ROLE_ARN.pattern}"), "an IAM role name or role ARN"
    ),
    "emr_instance_profile": _Rule(
        re.compile(f"{_IAM_NAME.pattern}|{_PROFILE_ARN.pattern}"),
        "an IAM instance profile name or instance profile ARN",
    ),
    "ecr_registry": _Rule(_REGISTRY, "a registry host such as 123456789012.dkr.ecr.us-east-1.amazonaws.com"),
    "image_tag": _Rule(_IMAGE_TAG, "a Docker tag such as 0.1.0 (letters, digits, '_', '.', '-')"),
    "subnet_ids": _Rule(_SUBNET, "subnet ids such as subnet-0123456789abcdef0, comma-separated"),
    "security_group_ids": _Rule(
        _SECURITY_GROUP, "security group ids such as sg-0123456789abcdef0, comma-separated"
    ),
}


_DERIVED_DEFAULTS = {
    "reports_bucket": "the artifacts bucket",
    "ecr_registry": f"{PLACEHOLDER_ACCOUNT}.dkr.ecr.<region>.amazonaws.com",
}


def _fail(field: str, source: str, value: object, rule: _Rule) -> ValueError:
    default = _DERIVED_DEFAULTS.get(field) or repr(getattr(Settings, field))
    return ValueError(
        f"{source}={value!r} is not valid: expected {rule.expected}. "
        f"Fix the value, or unset it to use the default ({default})."
    )


@dataclass(frozen=True)
class Settings:
    """orchard's settings; build it with ``load_settings()`` (see the module docstring for each field)."""

    region: str = "us-east-1"
    aws_conn_id: str = "aws_default"
    data_bucket: str = "orchard-data"
    artifacts_bucket: str = "orchard-artifacts"
    reports_bucket: str = ""  # empty: the artifacts bucket
    reports_prefix: str = "reports/"
    sagemaker_execution_role_arn: str = _role("orchard-sagemaker-execution")
    batch_job_role_arn: str = _role("orchard-batch-job")
    batch_instance_role_arn: str = (
        f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:instance-profile/orchard-batch-instance"
    )
    batch_service_role_arn: str = _role("orchard-batch-service")
    emr_service_role: str = "orchard-emr-service"
    emr_instance_profile: str = "orchard-emr-instance-profile"
    ecr_registry: str = ""  # empty: the placeholder account's registry in `region`
    image_tag: str = "0.1.0"
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Derived defaults: they follow the fields they derive from unless set explicitly.
        if not self.reports_bucket:
            object.__setattr__(self, "reports_bucket", self.artifacts_bucket)
        if not self.ecr_registry:
            object.__setattr__(self, "ecr_registry", _default_registry(self.region))
        object.__setattr__(self, "reports_prefix", _normalise_prefix(self.reports_prefix))
        for name in ("subnet_ids", "security_group_ids"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for f in fields(self):
            _validate(f.name, getattr(self, f.name), f"Settings.{f.name}")

    def image_uri(self, repository: str) -> str:
        """``<ecr_registry>/<repository>:<image_tag>``, e.g. for repository ``orchard/pose-training``."""
        registry_like = isinstance(repository, str) and (".amazonaws.com" in repository or ":" in repository)
        if not isinstance(repository, str) or registry_like or not _REPOSITORY.fullmatch(repository):
            raise ValueError(
                f"image repository {repository!r} is not valid: expected an ECR repository name such as "
                "orchard/pose-training (lowercase, no registry, no tag; the tag comes from image_tag)"
            )
        return f"{self.ecr_registry}/{repository}:{self.image_tag}"


def load_settings(
    environ: Mapping[str, str] | None = None, *, variables: bool | VariableGetter = True
) -> Settings:
    """Settings from ``environ`` (default ``os.environ``), then Airflow Variables, then defaults.

    ``variables``: True reads Airflow Variables where Airflow is configured, False never does, and a
    callable ``key -> str | None`` replaces the Variable lookup (tests, other backends).
    """
    env = os.environ if environ is None else environ
    variable = _variable_lookup(env, variables)
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw, source = _lookup(f.name, env, variable)
        if raw is not None:
            values[f.name] = _parse(f.name, raw, source)
    return Settings(**values)  # type: ignore[arg-type]


def image_uri(repository: str, settings: Settings | None = None) -> str:
    """``<ecr_registry>/<repository>:<image_tag>`` from ``settings`` (default: ``load_settings()``)."""
    return (settings or load_settings()).image_uri(repository)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def variable_name(field: str) -> str:
    return f"{VARIABLE_PREFIX}{field}"


def _env_names(field: str) -> tuple[str, ...]:
    # AWS_DEFAULT_REGION is what boto3 itself reads: honouring it keeps names and clients in one region.
    return (env_name(field), "AWS_DEFAULT_REGION") if field == "region" else (env_name(field),)


def _lookup(field: str, env: Mapping[str, str], variable: VariableGetter | None) -> tuple[str | None, str]:
    for name in _env_names(field):
        value = env.get(name)
        if value is not None and value.strip():
            return value.strip(), f"environment variable {name}"
    if variable is not None:
        value = variable(variable_name(field))
        if value is not None and str(value).strip():
            return str(value).strip(), f"Airflow Variable {variable_name(field)}"
    return None, ""


def _parse(field: str, raw: str, source: str) -> object:
    value: object = _split_ids(raw) if field in ("subnet_ids", "security_group_ids") else raw
    if field == "reports_prefix":
        value = _normalise_prefix(raw)
    _validate(field, value, source)
    return value


def _validate(field: str, value: object, source: str) -> None:
    rule = _RULES[field]
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, str) or not rule.pattern.fullmatch(item):
            raise _fail(field, source, value, rule)


def _split_ids(raw: str) -> tuple[str, ...]:
    if raw.lstrip().startswith("["):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return tuple(str(item).strip() for item in parsed if str(item).strip())
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip().lstrip("/")
    return f"{prefix.rstrip('/')}/" if prefix else ""


def _default_registry(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{PLACEHOLDER_ACCOUNT}.dkr.ecr.{region}.{suffix}"


def _variable_lookup(env: Mapping[str, str], variables: bool | VariableGetter) -> VariableGetter | None:
    if callable(variables):
        return _guarded(variables)
    if not variables or env.get(USE_VARIABLES_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    return _guarded(_airflow_variable) if _airflow_configured(env) else None


def _airflow_configured(env: Mapping[str, str]) -> bool:
    return "airflow" in sys.modules or "AIRFLOW_HOME" in env or any(k.startswith("AIRFLOW__") for k in env)


def _airflow_variable(key: str) -> str | None:
    from airflow.sdk import Variable  # lazy: Airflow 3.0+ Task SDK; absent outside Airflow

    value = Variable.get(key, default=None)
    return None if value is None else str(value)


def _guarded(getter: VariableGetter) -> VariableGetter:
    """Wrap a Variable getter so that its first failure disables it (and is logged) instead of raising."""
    broken = False

    def get(key: str) -> str | None:
        nonlocal broken
        if broken:
            return None
        try:
            return getter(key)
        except Exception as error:  # any backend failure: DB down, API server unreachable, no Airflow
            broken = True
            log.warning("orchard settings: Airflow Variables unavailable (%s); using env and defaults", error)
            return None

    return get
