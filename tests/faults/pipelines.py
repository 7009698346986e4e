"""What the fault harness knows about each pipeline: how to set up a small run (the e2e tests' data, made
smaller and faster), which tasks call AWS, and how to inventory the sandbox afterwards — through AWS APIs
only (boto3 with the administrator key, which fault injection never touches)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pipeline:
    dag_id: str
    setup: Callable[[Any], dict]  # (pytest monkeypatch) -> run conf; the sandbox is clean and deployed
    # Tasks that make no AWS call of their own (a branch on params): not worth a cell.
    no_aws: frozenset[str] = field(default_factory=frozenset)

    @property
    def dag_file(self) -> Path:
        return REPO_ROOT / "dags" / f"{self.dag_id}.py"


def _buckets(*names: str):
    s3 = boto3.client("s3")
    for bucket in dict.fromkeys(names):
        s3.create_bucket(Bucket=bucket)
    return s3


def _settings():
    from orchard.settings import load_settings

    return load_settings(variables=False)


def _auto_labeling(monkeypatch) -> dict:
    from local_aws.demo_data import auto_labeling as demo

    data, artifacts = "orchard-data", "orchard-artifacts"
    s3 = _buckets(data, artifacts)
    demo.upload_frames(s3, data, "frames/", 4)
    s3.put_object(Bucket=data, Key="model/model.tar.gz", Body=demo.model_tarball())
    demo.prepare_ground_truth(s3, boto3.client("sagemaker"), data)
    return {
        "frames_prefix": f"s3://{data}/frames/",
        "model_data_uri": f"s3://{data}/model/model.tar.gz",
        "frames_per_shard": 4,  # one mapped invoke: a second shard repeats the same calls, ~15 s a cell
        "poll_seconds": 1,
    }


def _edge_deployment(monkeypatch) -> dict:
    from local_aws.demo_data import edge_deployment as demo

    settings = _settings()
    s3 = _buckets(settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket)
    conf = demo.upload(s3, settings, per_device=2, calibration=4)
    return {
        **conf,
        "poll_seconds": 1,
        "capture_batch_size": 2,
        "capture_push_period_seconds": 1,
        "delete_fleet": True,
    }


def _aerial_pretraining(monkeypatch) -> dict:
    from local_aws.demo_data import aerial_pretraining as demo

    settings = _settings()
    s3 = _buckets(settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket)
    conf = demo.upload(s3, settings, patches=40)
    return {**conf, "poll_seconds": 1, "probe_epochs": 2, "promotion_margin": -1.0}  # promoted: every task


def _fruit_features(monkeypatch) -> dict:
    from local_aws.demo_data.fruit_features import generate

    settings = _settings()
    s3 = _buckets(settings.data_bucket, settings.artifacts_bucket)
    files, _corrupt = generate(8, seed=1, size=128)
    for key, body in files.items():
        s3.put_object(Bucket=settings.data_bucket, Key=f"fruit_features/faults/images/{key}", Body=body)
    return {
        "images_prefix": f"s3://{settings.data_bucket}/fruit_features/faults/images/",
        "output_prefix": f"s3://{settings.data_bucket}/fruit_features/features/",
        "core_node_counts": [1],
        "pca_k": 2,
        "onnx_batch_size": 8,
        "poll_seconds": 1,
    }


def _pose_training(monkeypatch) -> dict:
    from local_aws.demo_data import pose_training as demo
    from orchard.pose_training import infra

    settings = _settings()
    s3 = _buckets(settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket)
    demo.create_batch_roles(boto3.client("iam"), settings)
    key = f"{infra.WATCHED_PREFIX}{demo.PROJECT}.zip"
    s3.put_object(Bucket=settings.data_bucket, Key=key, Body=demo.project_zip())
    return {
        "project_uri": f"s3://{settings.data_bucket}/{key}",
        "epochs": 1,
        "batch_size": 4,
        "backbone_weights": "none",
        "train_crop": "96x80",
        "poll_seconds": 1,
    }


PIPELINES = {
    p.dag_id: p
    for p in (
        Pipeline("auto_labeling", _auto_labeling, frozenset({"send_to_labeling"})),
        Pipeline("edge_deployment", _edge_deployment, frozenset({"rollout_request", "approve_rollout"})),
        Pipeline(
            "aerial_pretraining",
            _aerial_pretraining,
            frozenset({"promotion_gate", "promotion_request", "approve_promotion", "not_promoted"}),
        ),
        Pipeline("fruit_features", _fruit_features, frozenset({"export_request"})),
        Pipeline("pose_training", _pose_training),
    )
}


# ------------------------------------------------------------------------------------------ inventory
_EMR_LIVE = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]
_BATCH_LIVE = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]
_SETTLING = ("TERMINATING", "Stopping", "STOPPING")


def _pages(client, method: str, key: str, **kwargs) -> list[Any]:
    if client.can_paginate(method):
        pages = client.get_paginator(method).paginate(**kwargs)
        return [item for page in pages for item in page.get(key, [])]
    return client.__getattribute__(method)(**kwargs).get(key, [])


def inventory(client: Callable[[str], Any] = boto3.client) -> list[str]:
    """Every billable or orchard-made resource still alive in the sandbox, one line each. `client(service)`
    makes the boto3 clients (default: this process's sandbox, administrator key)."""
    found: list[str] = []
    sm = client("sagemaker")
    found += [
        f"SageMaker endpoint {e['EndpointName']} ({e['EndpointStatus']})"
        for e in _pages(sm, "list_endpoints", "Endpoints")
    ]
    found += [
        f"SageMaker endpoint config {c['EndpointConfigName']}"
        for c in _pages(sm, "list_endpoint_configs", "EndpointConfigs")
    ]
    found += [f"SageMaker model {m['ModelName']}" for m in _pages(sm, "list_models", "Models")]
    for kind, method, key, name, status, live in (
        (
            "training job",
            "list_training_jobs",
            "TrainingJobSummaries",
            "TrainingJobName",
            "TrainingJobStatus",
            ("InProgress", "Stopping"),
        ),
        (
            "processing job",
            "list_processing_jobs",
            "ProcessingJobSummaries",
            "ProcessingJobName",
            "ProcessingJobStatus",
            ("InProgress", "Stopping"),
        ),
        (
            "labeling job",
            "list_labeling_jobs",
            "LabelingJobSummaryList",
            "LabelingJobName",
            "LabelingJobStatus",
            ("Initializing", "InProgress", "Stopping"),
        ),
        (
            "compilation job",
            "list_compilation_jobs",
            "CompilationJobSummaries",
            "CompilationJobName",
            "CompilationJobStatus",
            ("INPROGRESS", "STARTING", "STOPPING"),
        ),
    ):
        found += [
            f"SageMaker {kind} {j[name]} ({j[status]})" for j in _pages(sm, method, key) if j[status] in live
        ]
    scaling = client("application-autoscaling")
    found += [
        f"scalable target {t['ResourceId']}"
        for t in _pages(scaling, "describe_scalable_targets", "ScalableTargets", ServiceNamespace="sagemaker")
    ]
    found += [
        f"scaling policy {p['PolicyName']}"
        for p in _pages(scaling, "describe_scaling_policies", "ScalingPolicies", ServiceNamespace="sagemaker")
    ]
    found += [
        f"CloudWatch alarm {a['AlarmName']}"
        for a in _pages(client("cloudwatch"), "describe_alarms", "MetricAlarms")
    ]
    emr = client("emr")
    found += [
        f"EMR cluster {c['Id']} {c['Name']} ({c['Status']['State']})"
        for c in _pages(emr, "list_clusters", "Clusters", ClusterStates=_EMR_LIVE)
    ]
    batch = client("batch")
    for queue in _pages(batch, "describe_job_queues", "jobQueues"):
        for status in _BATCH_LIVE:
            jobs = _pages(
                batch, "list_jobs", "jobSummaryList", jobQueue=queue["jobQueueName"], jobStatus=status
            )
            found += [f"Batch job {j['jobName']} {j['jobId']} ({_batch_state(status, j)})" for j in jobs]
    for env in _pages(batch, "describe_compute_environments", "computeEnvironments"):
        min_vcpus = (env.get("computeResources") or {}).get("minvCpus", 0)
        if min_vcpus > 0:
            found.append(f"Batch compute environment {env['computeEnvironmentName']} (minvCpus {min_vcpus})")
    iot = client("iot")
    found += [
        f"IoT job {j['jobId']} (IN_PROGRESS)" for j in _pages(iot, "list_jobs", "jobs", status="IN_PROGRESS")
    ]
    found += [f"IoT thing {t['thingName']}" for t in _pages(iot, "list_things", "things")]
    found += [f"IoT thing group {g['groupName']}" for g in _pages(iot, "list_thing_groups", "thingGroups")]
    found += _fleet_identity(iot, client("secretsmanager"))
    return found


def _fleet_identity(iot, secrets) -> list[str]:
    """The rest of a fleet orchard made (hooks/iot.py `remove_fleet`): each device's provisioning secret
    (billed per secret-month) and certificate, the fleet's IoT policy and role alias. No other pipeline makes
    these, so in a clean sandbox any one is a leftover. (The thing type stays on purpose: deleting one takes
    AWS 5 minutes, and it costs nothing. The IAM role is left out: every pipeline's roles live there.)
    ListSecrets leaves out secrets scheduled for deletion, as AWS does
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html); orchard deletes
    its secrets with ForceDeleteWithoutRecovery, so none waits in a recovery window."""
    found = [f"Secrets Manager secret {s['Name']}" for s in _pages(secrets, "list_secrets", "SecretList")]
    found += [
        f"IoT certificate {c['certificateId'][:12]}... ({c['status']})"
        for c in _pages(iot, "list_certificates", "certificates")
    ]
    found += [f"IoT policy {p['policyName']}" for p in _pages(iot, "list_policies", "policies")]
    found += [f"IoT role alias {alias}" for alias in _pages(iot, "list_role_aliases", "roleAliases")]
    return found


def _batch_state(status: str, job: dict) -> str:
    """A STARTING or RUNNING job that TerminateJob was asked to stop stays so until its container stops,
    then FAILED ("TerminateJob"; its reason "is returned by future DescribeJobs operations",
    https://docs.aws.amazon.com/batch/latest/APIReference/API_TerminateJob.html): it is settling (below)."""
    if status in ("STARTING", "RUNNING") and job.get("statusReason"):
        return f"{status}, TERMINATING: {job['statusReason']}"
    return status


def settled_inventory(timeout_s: float = 20.0, client: Callable[[str], Any] = boto3.client) -> list[str]:
    """The inventory, once resources in a transitional state (TERMINATING, Stopping) had `timeout_s` to end:
    a teardown that asked for termination is not a leftover; one still on its way after that is."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = inventory(client)
        if not any(state in line for line in found for state in _SETTLING) or time.monotonic() > deadline:
            return found
        time.sleep(1)
