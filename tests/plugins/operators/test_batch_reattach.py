"""ReattachingBatchOperator: a retry of the train task waits on the job the first try submitted."""

from __future__ import annotations

from unittest import mock

import boto3
import pytest
from airflow.exceptions import TaskDeferred

from orchard.operators.batch import ReattachingBatchOperator

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
QUEUE = "reattach-queue"
JOB_NAME = "pose_training-manual-20261121T100000-0123456789"


@pytest.fixture
def batch(aws):
    client = boto3.client("batch")
    role = boto3.client("iam").create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    environment = client.create_compute_environment(
        computeEnvironmentName="reattach-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    client.create_job_queue(
        jobQueueName=QUEUE,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    client.register_job_definition(
        jobDefinitionName="sleeper",
        type="container",
        containerProperties={
            "image": f"{REGISTRY}/orchard/hello-batch:1.0",
            "command": ["python", "-c", "import time; time.sleep(60)"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    return client


def operator() -> ReattachingBatchOperator:
    return ReattachingBatchOperator(
        task_id="train",
        job_name=JOB_NAME,
        job_queue=QUEUE,
        job_definition="sleeper",
        deferrable=True,
        poll_interval=1,
        max_retries=10,
    )


def try_once(op: ReattachingBatchOperator, submits: list) -> str:
    """One try of the task: execute until it defers (as the worker would), counting SubmitJob calls."""
    client = op.hook.client
    real_submit = client.submit_job

    def counted(**kwargs):
        submits.append(kwargs["jobName"])
        return real_submit(**kwargs)

    with (
        mock.patch.object(client, "submit_job", side_effect=counted),
        mock.patch.object(ReattachingBatchOperator, "_persist_links", return_value={"status": "RUNNING"}),
        mock.patch("airflow.providers.amazon.aws.links.batch.BatchJobDetailsLink.persist"),
    ):
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context={})
    return deferred.value.trigger.serialize()[1]["job_id"]


def test_a_retry_reattaches_to_the_running_job_instead_of_submitting(batch):
    submits: list[str] = []
    first = try_once(operator(), submits)
    retry = try_once(operator(), submits)  # a new operator instance: the worker died, the task retried

    assert submits == [JOB_NAME]  # SubmitJob called once across the retry
    assert retry == first
    jobs = batch.list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": [JOB_NAME]}])[
        "jobSummaryList"
    ]
    assert len(jobs) == 1
    batch.terminate_job(jobId=first, reason="test over")


def test_a_failed_job_is_not_reattached_a_new_one_is_submitted(batch):
    submits: list[str] = []
    first = try_once(operator(), submits)
    batch.terminate_job(jobId=first, reason="simulated failure")
    for _ in range(100):
        if batch.describe_jobs(jobs=[first])["jobs"][0]["status"] == "FAILED":
            break
        __import__("time").sleep(0.1)

    second = try_once(operator(), submits)

    assert submits == [JOB_NAME, JOB_NAME]
    assert second != first
    batch.terminate_job(jobId=second, reason="test over")
