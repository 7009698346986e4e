"""Provision orchard's IAM in the sandbox, as an account administrator would on AWS: each pipeline's
Airflow role (`include/iam/<dag_id>.json`), the roles its jobs run as
(`include/iam/<dag_id>_<kind>_role.json`, with the trust policy of the service that assumes them) and the
service roles the settings name.

Used by the e2e tests (tests/e2e/conftest.py: every test runs under its DAG's role) and by `make demo` /
`make up` (local_aws/stack/). Role names are the defaults of plugins/orchard/settings.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import local_aws

IAM_FOLDER = Path(__file__).resolve().parent.parent / "include" / "iam"
ACCOUNT = "123456789012"  # moto's default account, which orchard's settings default to

SAGEMAKER = "sagemaker.amazonaws.com"
# <dag_id>_<kind>_role.json → (role name, service principal that assumes it, also an instance profile?)
# The names are plugins/orchard/settings.py's defaults: sagemaker_execution_role_arn, batch_job_role_arn,
# emr_instance_profile.
JOB_ROLES: dict[str, tuple[str, str, bool]] = {
    "pose_training_job_role": ("orchard-batch-job", "ecs-tasks.amazonaws.com", False),
    "aerial_pretraining_execution_role": ("orchard-sagemaker-execution", SAGEMAKER, False),
    "auto_labeling_execution_role": ("orchard-sagemaker-execution", SAGEMAKER, False),
    "edge_deployment_execution_role": ("orchard-sagemaker-execution", SAGEMAKER, False),
    "fruit_features_export_role": ("orchard-sagemaker-execution", SAGEMAKER, False),
    "fruit_features_cluster_role": ("orchard-emr-instance-profile", "ec2.amazonaws.com", True),
}
# Roles the AWS services themselves use (AWS-managed policies on AWS; the sandbox's services act as the
# administrator, so they only need to exist and trust their service).
SERVICE_ROLES: list[tuple[str, str, bool]] = [
    ("orchard-batch-service", "batch.amazonaws.com", False),
    ("orchard-batch-instance", "ec2.amazonaws.com", True),
    ("orchard-emr-service", "elasticmapreduce.amazonaws.com", False),
]
# Managed policies a pipeline's own policy refers to (the edge devices' permissions boundary).
MANAGED_POLICIES = {"orchard-edge-device-boundary": "edge_deployment_device_boundary.json"}
# make demo / make up: one Airflow, one `aws_default` connection, so one role with every pipeline's policy.
DEMO_AIRFLOW_ROLE = "orchard-airflow-demo"
DEMO_AIRFLOW_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{DEMO_AIRFLOW_ROLE}"


def airflow_role_name(dag_id: str) -> str:
    return f"orchard-airflow-{dag_id.replace('_', '-')}"[:64]


def _trust_service(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _trust_account(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _ensure_role(iam, name: str, trust: str, profile: bool) -> str:
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    if profile:
        try:
            iam.create_instance_profile(InstanceProfileName=name)
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
    return arn


# The bucket names the policy files use: the settings' defaults. A deployment with other buckets renders its
# policies with its own names (`policy_document`); the sandbox does so from the settings it is given.
DEFAULT_BUCKETS = ("orchard-data", "orchard-artifacts")


def policy_document(path: Path, buckets: dict[str, str] | None = None) -> str:
    """The policy file's text with each default bucket name (`DEFAULT_BUCKETS`) replaced by `buckets`'."""
    text = path.read_text()
    for default, actual in (buckets or {}).items():
        text = text.replace(f"arn:aws:s3:::{default}", f"arn:aws:s3:::{actual}")
    return text


def settings_buckets(settings) -> dict[str, str]:
    """{default bucket name: the settings' bucket name} for `policy_document`."""
    return {"orchard-data": settings.data_bucket, "orchard-artifacts": settings.artifacts_bucket}


def pipeline_ids() -> list[str]:
    """Every DAG id with an Airflow policy in include/iam."""
    return sorted(p.stem for p in IAM_FOLDER.glob("*.json") if not p.stem.endswith(("_role", "_boundary")))


def create_pipeline_roles(
    endpoint_url: str,
    dag_ids: Iterable[str],
    airflow_role: str | None = None,
    account: str = ACCOUNT,
    buckets: dict[str, str] | None = None,
) -> str:
    """Create the roles of `dag_ids` in the sandbox at `endpoint_url`; returns the Airflow role's ARN.

    One DAG: its Airflow role holds exactly include/iam/<dag_id>.json. Several (make demo / up, whose
    Airflow has one `aws_default` connection): `airflow_role` holds each one's policy as an inline policy.
    A job role shared by pipelines (orchard-sagemaker-execution) holds the policy of each pipeline given.
    `buckets` renames the policies' default buckets (`settings_buckets(settings)`). Calling it again
    replaces the policies (e.g. after the settings moved a bucket).
    """
    dag_ids = list(dag_ids)
    unknown = [d for d in dag_ids if not (IAM_FOLDER / f"{d}.json").exists()]
    if unknown:
        raise ValueError(f"no IAM policy include/iam/<dag_id>.json for {unknown}; known: {pipeline_ids()}")
    iam = local_aws.sandbox_client("iam", endpoint_url)
    for name, file in MANAGED_POLICIES.items():
        if (IAM_FOLDER / file).exists():
            try:
                iam.create_policy(PolicyName=name, PolicyDocument=(IAM_FOLDER / file).read_text())
            except iam.exceptions.EntityAlreadyExistsException:
                pass
    for name, service, profile in SERVICE_ROLES:
        _ensure_role(iam, name, _trust_service(service), profile)
    role_name = airflow_role or airflow_role_name(dag_ids[0])
    airflow_arn = _ensure_role(iam, role_name, _trust_account(account), False)
    for dag_id in dag_ids:
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName=dag_id,
            PolicyDocument=policy_document(IAM_FOLDER / f"{dag_id}.json", buckets),
        )
        for path in sorted(IAM_FOLDER.glob(f"{dag_id}_*_role.json")):
            if path.stem not in JOB_ROLES:
                raise ValueError(f"{path.name}: no role name for it in local_aws/iam_setup.py JOB_ROLES")
            name, service, profile = JOB_ROLES[path.stem]
            _ensure_role(iam, name, _trust_service(service), profile)
            iam.put_role_policy(
                RoleName=name, PolicyName=path.stem, PolicyDocument=policy_document(path, buckets)
            )
    return airflow_arn
