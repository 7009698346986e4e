"""The AWS resources `pose_training` needs, created idempotently: Batch (GPU) and the upload event path.

Batch: a managed EC2 compute environment on one GPU family (on-demand, or SPOT with
SPOT_PRICE_CAPACITY_OPTIMIZED), minvCpus 0 so no instance runs between trainings; its job queue; the job
definition (1 vCPU, 10 GiB, 1 GPU, retries only when EC2 takes a spot host back). Existing resources
are reused; a job definition whose content changed gets a new revision.

Event path: the data bucket sends its events to EventBridge; a rule matching "Object Created" under
`<WATCHED_PREFIX>*.zip` targets an SQS queue (its policy lets only that rule send), which the DAG's Asset
watches. An SQS target takes no RoleArn: EventBridge is authorised by the queue's resource policy.

One-time setup (before the first upload: the watcher polls a queue that must exist; the DAG's setup task
`ensure_event_path` repeats it each run, harmlessly, so a first manual run sets it up too):
    PYTHONPATH=plugins python -m orchard.pose_training.infra
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchard import aws
from orchard.errors import INPUT_ERROR_EXIT_CODE, InputError
from orchard.settings import load_settings

WATCHED_PREFIX = "pose-training/projects/"
INFRA_COMMAND = "PYTHONPATH=plugins python -m orchard.pose_training.infra"  # the one-time setup
UPLOAD_QUEUE = "orchard-pose-training-uploads"
UPLOAD_RULE = "orchard-pose-training-uploads"
UPLOAD_TARGET_ID = "pose-training-upload-queue"
JOB_DEFINITION = "orchard-pose-training"
IMAGE_REPOSITORY = "orchard/pose-training"
GPU_FAMILIES = ("g4dn", "g5", "g6")
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
# What AWS Batch puts in statusReason when EC2 reclaims a spot host: the only failure worth a retry.
SPOT_RECLAIMED = "Host EC2*"
JOB_VCPUS, JOB_MEMORY_MIB, JOB_GPUS = 1, 10 * 1024, 1


def account_of(settings: Any) -> str:
    """The AWS account, from the Batch job role ARN the settings name (arn:aws:iam::<account>:role/...)."""
    return settings.batch_job_role_arn.split(":")[4]


def upload_queue_url(settings: Any) -> str:
    """The queue's URL as AWS spells it, known without an API call (the Asset watcher needs it at parse)."""
    return f"https://sqs.{settings.region}.amazonaws.com/{account_of(settings)}/{UPLOAD_QUEUE}"


# What the Asset watcher's queue depends on, and the variable that sets each where the DAG is parsed.
WATCHER_FIELDS = {
    "region": "ORCHARD_REGION",
    "batch_job_role_arn": "ORCHARD_BATCH_JOB_ROLE_ARN",
    "data_bucket": "ORCHARD_DATA_BUCKET",
    "aws_conn_id": "ORCHARD_AWS_CONN_ID",
}


def watcher_mismatch(live: Any, parsed: Any, queue_url: str) -> str:
    """Why the DAG's Asset watcher (built from the parse-time settings `parsed`) would not see this
    deployment's uploads, or "" when it does. `live` are the run's settings (with Airflow Variables),
    `queue_url` the URL of the queue `ensure_event_path` just made.

    A trigger's arguments are fixed at parse time, where orchard reads no Variable: the fields below must
    come from the environment of the dag-processor and the triggerer, not from Variables.
    """
    differing = [field for field in WATCHER_FIELDS if getattr(live, field) != getattr(parsed, field)]
    if not differing and queue_url.rstrip("/").split("/")[-2:] == [account_of(parsed), UPLOAD_QUEUE]:
        return ""
    fixes = ", ".join(f"{WATCHER_FIELDS[f]}={getattr(live, f)}" for f in differing) or (
        f"the settings' account ({account_of(parsed)}) is not the queue's ({queue_url})"
    )
    return (
        f"the upload watcher polls {upload_queue_url(parsed)} for "
        f"s3://{parsed.data_bucket}/{WATCHED_PREFIX}, "
        f"but this run's settings put the upload path at {queue_url} for s3://{live.data_bucket}/"
        f"{WATCHED_PREFIX}: uploads would start no run. The watcher is built when the DAG file is parsed, "
        f"from the environment only: set {fixes} in the environment of the dag-processor and triggerer "
        "(not as Airflow Variables), then re-run"
    )


def upload_event_pattern(bucket: str, prefix: str = WATCHED_PREFIX) -> dict:
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"wildcard": f"{prefix}*.zip"}]}},
    }


# ------------------------------------------------------------------------------------- event path


def ensure_event_path(
    s3: Any, events: Any, sqs: Any, settings: Any, log: Callable[[str], None] = print
) -> dict:
    """Queue (+ policy), rule (+ target), bucket → EventBridge; returns their ids. Safe to repeat."""
    bucket = settings.data_bucket
    queue_url = sqs.create_queue(
        QueueName=UPLOAD_QUEUE,
        Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600), "VisibilityTimeout": "120"},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(
        Name=UPLOAD_RULE,
        EventPattern=json.dumps(upload_event_pattern(bucket)),
        State="ENABLED",
        Description=f"DeepLabCut project zips under s3://{bucket}/{WATCHED_PREFIX} -> pose_training",
    )["RuleArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, rule_arn))}
    )
    failed = events.put_targets(Rule=UPLOAD_RULE, Targets=[{"Id": UPLOAD_TARGET_ID, "Arn": queue_arn}])
    if failed.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the SQS target of {UPLOAD_RULE}: {failed['FailedEntries']}")
    _enable_bucket_eventbridge(s3, bucket, log)
    log(f"event path: s3://{bucket}/{WATCHED_PREFIX}*.zip -> rule {UPLOAD_RULE} -> {queue_url}")
    return {"queue_url": queue_url, "queue_arn": queue_arn, "rule_arn": rule_arn}


def ensure_watched_event_path(parsed: Any) -> dict:
    """The DAG's setup: `ensure_event_path` with the run's live settings, then InputError (a configuration
    error: a retry cannot fix it) when the Asset watcher, built from `parsed` (the parse-time settings),
    polls another queue than the one the live settings put the upload path on."""
    settings = load_settings()  # once: each read looks up every Airflow Variable the environment lacks
    s3, events, sqs = aws.clients("s3", "events", "sqs", conn_id=settings.aws_conn_id)
    made = ensure_event_path(s3, events, sqs, settings)
    problem = watcher_mismatch(settings, parsed, made["queue_url"])
    if problem:
        raise InputError(problem)
    return made


def _queue_policy(queue_arn: str, rule_arn: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UploadRuleSendsOnly",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def _enable_bucket_eventbridge(s3: Any, bucket: str, log: Callable[[str], None]) -> None:
    """Turn on the bucket's EventBridge notifications, keeping its other notification configurations."""
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    current.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" in current:
        return
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={**current, "EventBridgeConfiguration": {}}
    )
    log(f"event path: EventBridge notifications enabled on s3://{bucket}")


# ------------------------------------------------------------------------------------------ Batch


def compute_environment_name(gpu_family: str, capacity: str) -> str:
    return f"orchard-pose-{gpu_family}-{capacity.lower().replace('_', '-')}"


def job_queue_name(gpu_family: str, capacity: str) -> str:
    """The queue of a run's jobs, from its params alone: the teardown finds them without any setup's XCom."""
    return f"{compute_environment_name(gpu_family, capacity)}-queue"


@dataclass(frozen=True)
class BatchSpec:
    """What the run asked for (DAG params)."""

    gpu_family: str
    capacity: str  # ON_DEMAND | SPOT
    max_vcpus: int
    max_runtime_s: int
    data_bucket: str

    @property
    def compute_environment(self) -> str:
        return compute_environment_name(self.gpu_family, self.capacity)

    @property
    def job_queue(self) -> str:
        return job_queue_name(self.gpu_family, self.capacity)

    @property
    def instance_type(self) -> str:
        """The type Batch picks for 1 GPU / 1 vCPU / 10 GiB in the family: its smallest, xlarge."""
        return f"{self.gpu_family}.xlarge"


def ensure_batch(
    batch: Any,
    ec2: Any,
    settings: Any,
    spec: BatchSpec,
    *,
    poll_s: float = 10,
    timeout_s: float = 600,
    log: Callable[[str], None] = print,
) -> dict:
    """Compute environment, job queue and job definition for `spec`; returns their names and ARNs."""
    environment_arn = _ensure_compute_environment(batch, ec2, settings, spec, log)
    _wait_valid(
        lambda: batch.describe_compute_environments(computeEnvironments=[environment_arn])[
            "computeEnvironments"
        ],
        "compute environment",
        poll_s,
        timeout_s,
    )
    queue_arn = _ensure_job_queue(batch, spec, environment_arn, log)
    _wait_valid(
        lambda: batch.describe_job_queues(jobQueues=[queue_arn])["jobQueues"], "job queue", poll_s, timeout_s
    )
    definition_arn = _ensure_job_definition(batch, settings, spec, log)
    return {
        "compute_environment": spec.compute_environment,
        "compute_environment_arn": environment_arn,
        "job_queue": spec.job_queue,
        "job_queue_arn": queue_arn,
        "job_definition_arn": definition_arn,
        "instance_type": spec.instance_type,
        "capacity": spec.capacity,
    }


def ensure_run_batch(params: Any) -> dict:
    """The DAG's Batch setup: `ensure_batch` for what the run's params ask, with the live settings."""
    settings = load_settings()
    spec = BatchSpec(
        gpu_family=params["gpu_family"],
        capacity=params["capacity"],
        max_vcpus=params["max_vcpus"],
        max_runtime_s=params["max_runtime_minutes"] * 60,
        data_bucket=settings.data_bucket,
    )
    batch, ec2 = aws.clients("batch", "ec2", conn_id=settings.aws_conn_id)  # one session, settings read once
    return ensure_batch(batch, ec2, settings, spec, poll_s=params["poll_seconds"])


def compute_resources(ec2: Any, settings: Any, spec: BatchSpec) -> dict:
    spot = spec.capacity == "SPOT"
    return {
        "type": "SPOT" if spot else "EC2",
        "allocationStrategy": "SPOT_PRICE_CAPACITY_OPTIMIZED" if spot else "BEST_FIT_PROGRESSIVE",
        "minvCpus": 0,  # no GPU instance between trainings (the seed kept 4 vCPUs billed all the time)
        "desiredvCpus": 0,
        "maxvCpus": spec.max_vcpus,
        "instanceTypes": [spec.gpu_family],
        "subnets": list(settings.subnet_ids) or _default_subnets(ec2),
        "securityGroupIds": list(settings.security_group_ids) or _default_security_group(ec2),
        "instanceRole": settings.batch_instance_role_arn,
        "ec2Configuration": [{"imageType": "ECS_AL2_NVIDIA"}],
        "tags": {"orchard:pipeline": "pose_training"},
    }


def _ensure_compute_environment(batch: Any, ec2: Any, settings: Any, spec: BatchSpec, log) -> str:
    found = batch.describe_compute_environments(computeEnvironments=[spec.compute_environment])[
        "computeEnvironments"
    ]
    if not found:
        arn = batch.create_compute_environment(
            computeEnvironmentName=spec.compute_environment,
            type="MANAGED",
            state="ENABLED",
            computeResources=compute_resources(ec2, settings, spec),
            serviceRole=settings.batch_service_role_arn,
        )["computeEnvironmentArn"]
        log(f"batch: created compute environment {spec.compute_environment} (minvCpus 0)")
        return arn
    environment = found[0]
    changes: dict[str, Any] = {}
    if environment.get("state") != "ENABLED":
        changes["state"] = "ENABLED"
    if int(environment.get("computeResources", {}).get("maxvCpus", spec.max_vcpus)) != spec.max_vcpus:
        changes["computeResources"] = {"maxvCpus": spec.max_vcpus}
    if changes:
        batch.update_compute_environment(computeEnvironment=spec.compute_environment, **changes)
        log(f"batch: updated compute environment {spec.compute_environment}: {changes}")
    else:
        log(f"batch: reusing compute environment {spec.compute_environment}")
    return environment["computeEnvironmentArn"]


def _ensure_job_queue(batch: Any, spec: BatchSpec, environment_arn: str, log) -> str:
    found = batch.describe_job_queues(jobQueues=[spec.job_queue])["jobQueues"]
    if not found:
        arn = batch.create_job_queue(
            jobQueueName=spec.job_queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment_arn}],
        )["jobQueueArn"]
        log(f"batch: created job queue {spec.job_queue}")
        return arn
    if found[0].get("state") != "ENABLED":
        batch.update_job_queue(jobQueue=spec.job_queue, state="ENABLED")
        log(f"batch: re-enabled job queue {spec.job_queue}")
    else:
        log(f"batch: reusing job queue {spec.job_queue}")
    return found[0]["jobQueueArn"]


def job_definition(settings: Any, spec: BatchSpec) -> dict:
    """RegisterJobDefinition's request. Per-run values (project, output) come as container overrides."""
    return {
        "jobDefinitionName": JOB_DEFINITION,
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": settings.image_uri(IMAGE_REPOSITORY),
            "resourceRequirements": [
                {"type": "VCPU", "value": str(JOB_VCPUS)},
                {"type": "MEMORY", "value": str(JOB_MEMORY_MIB)},
                {"type": "GPU", "value": str(JOB_GPUS)},
            ],
            "environment": [
                {"name": "TGT_S3_BUCKET", "value": spec.data_bucket},
                {"name": "DLC_PROJECT_PATH", "value": ""},  # set per run: the uploaded key
                {"name": "OUTPUT_PATH", "value": ""},  # set per run: the run's model prefix
            ],
            "jobRoleArn": settings.batch_job_role_arn,
            "privileged": False,
            "readonlyRootFilesystem": False,
        },
        "timeout": {"attemptDurationSeconds": spec.max_runtime_s},
        "retryStrategy": {
            "attempts": 3,
            # first match decides ("EvaluateOnExit - AWS Batch API Reference",
            # https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html): the job's input
            # error (orchard.errors.INPUT_ERROR_EXIT_CODE) is never retried, a reclaimed spot host is
            "evaluateOnExit": [
                {"onExitCode": str(INPUT_ERROR_EXIT_CODE), "action": "EXIT"},
                {"onStatusReason": SPOT_RECLAIMED, "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
        "tags": {"orchard:pipeline": "pose_training"},
        "propagateTags": True,
    }


# Fields of a registered definition compared with the wanted one: what decides a new revision.
_COMPARED = ("image", "resourceRequirements", "environment", "jobRoleArn", "privileged")


def _ensure_job_definition(batch: Any, settings: Any, spec: BatchSpec, log) -> str:
    wanted = job_definition(settings, spec)
    active = batch.describe_job_definitions(jobDefinitionName=JOB_DEFINITION, status="ACTIVE")[
        "jobDefinitions"
    ]
    latest = max(active, key=lambda d: d["revision"], default=None)
    if latest is not None and _same_definition(latest, wanted):
        log(f"batch: reusing job definition {JOB_DEFINITION}:{latest['revision']}")
        return latest["jobDefinitionArn"]
    arn = batch.register_job_definition(**wanted)["jobDefinitionArn"]
    log(
        f"batch: registered job definition {arn.rsplit('/', 1)[-1]}"
        + (f" (was revision {latest['revision']}: content changed)" if latest else "")
    )
    return arn


def _same_definition(registered: dict, wanted: dict) -> bool:
    def normal(container: dict) -> dict:
        picked = {key: container.get(key) for key in _COMPARED}
        # empty values (the per-run placeholders) are dropped by some APIs: compare without them
        picked["environment"] = sorted(
            (e["name"], e["value"]) for e in container.get("environment") or [] if e.get("value")
        )
        picked["resourceRequirements"] = sorted(
            (r["type"], str(r["value"])) for r in container.get("resourceRequirements") or []
        )
        picked["privileged"] = bool(container.get("privileged"))
        return picked

    return (
        normal(registered.get("containerProperties", {})) == normal(wanted["containerProperties"])
        and registered.get("timeout") == wanted["timeout"]
        and _retry(registered.get("retryStrategy")) == _retry(wanted["retryStrategy"])
    )


def _retry(strategy: dict | None) -> tuple:
    strategy = strategy or {}
    rules = [
        tuple(sorted((k, str(v).upper() if k == "action" else v) for k, v in r.items()))
        for r in strategy.get("evaluateOnExit", [])
    ]
    return strategy.get("attempts"), rules


def _default_subnets(ec2: Any) -> list[str]:
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    if not subnets:
        raise ValueError(
            "no default VPC subnets: set ORCHARD_SUBNET_IDS to the subnets the GPU instances use"
        )
    return [s["SubnetId"] for s in subnets]


def _default_security_group(ec2: Any) -> list[str]:
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"
    ]
    if not groups:
        raise ValueError("no default security group: set ORCHARD_SECURITY_GROUP_IDS")
    return [groups[0]["GroupId"]]


def _wait_valid(describe: Callable[[], list[dict]], what: str, poll_s: float, timeout_s: float) -> None:
    """AWS creates compute environments and queues asynchronously: wait for VALID (or fail with why)."""
    deadline = time.monotonic() + timeout_s
    while True:
        [resource] = describe()
        status = resource.get("status")
        if status == "VALID":
            return
        if status == "INVALID":
            raise RuntimeError(f"the {what} is INVALID: {resource.get('statusReason', 'no reason given')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {what} is still {status} after {timeout_s:.0f} s")
        time.sleep(poll_s)


# ------------------------------------------------------------------------------------------ teardown


def stop_run_job(batch: Any, job_queue: str, job_name: str, reason: str) -> list[str]:
    """Terminate this run's job if it still queues or runs (a failed or killed task must not leave a GPU
    billing). Returns the ids terminated."""
    stopped = []
    pages = batch.get_paginator("list_jobs").paginate(
        jobQueue=job_queue, filters=[{"name": "JOB_NAME", "values": [job_name]}]
    )
    for page in pages:
        for job in page.get("jobSummaryList", []):
            if job["jobName"] == job_name and job.get("status") not in ("SUCCEEDED", "FAILED"):
                batch.terminate_job(jobId=job["jobId"], reason=reason)
                stopped.append(job["jobId"])
    return stopped


def stop_run_jobs(
    projects: list[dict],
    params: Any,
    reason: str = "pose_training run ended",
    log: Callable[[str], None] = print,
) -> list[str]:
    """The DAG's teardown: terminate the run's jobs that still queue or run, found by their deterministic
    names in the queue the params name (not from ensure_batch's XCom: whatever failed, what exists is
    found). Returns the ids terminated."""
    batch = aws.client("batch")
    queue = job_queue_name(params["gpu_family"], params["capacity"])
    stopped = []
    for project in projects:
        ids = stop_run_job(batch, queue, project["job_name"], reason)
        log(f"terminated {ids}" if ids else f"no job of {project['job_name']} left running")
        stopped += ids
    return stopped


def main() -> None:
    """The one-time setup of the event path, with the settings and AWS credentials of this shell."""
    import boto3

    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    session = boto3.session.Session(region_name=settings.region)
    ensure_event_path(session.client("s3"), session.client("events"), session.client("sqs"), settings)


if __name__ == "__main__":
    main()
