"""AWS Batch in the sandbox: real job processes, AWS's states, exit codes, reasons and logs."""

from __future__ import annotations

import boto3
import pytest

from tests.local_aws.polling import watch_states

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
TERMINAL = {"SUCCEEDED", "FAILED"}


@pytest.fixture
def batch(aws):
    client = boto3.client("batch")
    role = boto3.client("iam").create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    env = client.create_compute_environment(
        computeEnvironmentName="sandbox-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    client.create_job_queue(
        jobQueueName="sandbox-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    boto3.client("s3").create_bucket(Bucket="results")
    return client


def register(batch, name: str, image: str, **extra) -> None:
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": f"{REGISTRY}/orchard/{image}:1.0",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": [{"name": "OUTPUT_BUCKET", "value": "results"}],
            "jobRoleArn": "arn:aws:iam::123456789012:role/orchard-batch-job",  # what the job runs as
        },
        **extra,
    )


def run(batch, definition: str, **overrides) -> tuple[dict, list[str]]:
    job_id = batch.submit_job(
        jobName=f"{definition}-run", jobQueue="sandbox-queue", jobDefinition=definition, **overrides
    )["jobId"]
    describe = lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]  # noqa: E731
    seen = watch_states(lambda: describe()["status"], TERMINAL)
    return describe(), seen


def log_lines(job: dict) -> list[str]:
    events = boto3.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"]
    )["events"]
    return [event["message"] for event in events]


def test_a_job_that_succeeds_runs_its_code_and_logs_to_cloudwatch(batch):
    register(batch, "hello", "hello-batch")

    job, seen = run(
        batch, "hello", containerOverrides={"environment": [{"name": "OUTPUT_KEY", "value": "out/marker"}]}
    )

    assert seen[-2:] == ["RUNNING", "SUCCEEDED"]
    assert job["container"]["exitCode"] == 0
    assert job["attempts"][0]["container"]["exitCode"] == 0
    assert boto3.client("s3").get_object(Bucket="results", Key="out/marker")["Body"].read() == b"done"
    lines = log_lines(job)
    assert f"hello from batch job {job['jobId']}" in " ".join(lines)
    assert "GREETING=from-the-dockerfile" in lines  # the image's ENV reaches the process
    assert job["container"]["logStreamName"].startswith("hello/default/")


def test_a_job_that_exits_3_ends_failed_with_that_reason(batch):
    register(batch, "fails", "failing-batch")

    job, seen = run(batch, "fails")

    assert seen[-1] == "FAILED"
    assert job["statusReason"] == "Essential container in task exited"
    assert job["container"]["exitCode"] == 3
    assert "checking input: the project zip has no config.yaml" in log_lines(job)


def test_an_image_with_no_job_folder_fails_naming_the_image_and_the_fix(batch):
    register(batch, "nowhere", "not-a-folder")

    job, _ = run(batch, "nowhere")

    assert job["status"] == "FAILED"
    assert "orchard/not-a-folder:1.0" in job["statusReason"]
    assert "include/" in job["statusReason"] and "ORCHARD_JOB_ROOTS" in job["statusReason"]


def test_retry_strategy_retries_only_what_evaluate_on_exit_allows(batch):
    register(batch, "retried", "failing-batch", retryStrategy={"attempts": 3})
    register(
        batch,
        "not-retried",
        "failing-batch",
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"onStatusReason": "Host EC2*", "action": "RETRY"},  # spot interruption
                {"onReason": "*", "action": "EXIT"},
            ],
        },
    )

    retried, _ = run(batch, "retried")
    not_retried, _ = run(batch, "not-retried")

    assert len(retried["attempts"]) == 3
    assert len(not_retried["attempts"]) == 1
    assert not_retried["status"] == "FAILED"


def test_terminate_job_fails_a_job_still_starting_without_waiting_for_its_environment(batch, monkeypatch):
    """TerminateJob moves a STARTING job to FAILED (API_TerminateJob). A first environment build takes
    minutes here (AWS's image pull): the job must not stay STARTING until it ends."""
    import threading

    from local_aws import containers

    release = threading.Event()
    real_prepare = containers.prepare

    def slow_prepare(*args, **kwargs):
        release.wait(60)  # a long first build
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(containers, "prepare", slow_prepare)
    register(batch, "slow-start", "hello-batch")
    job_id = batch.submit_job(jobName="slow-start", jobQueue="sandbox-queue", jobDefinition="slow-start")[
        "jobId"
    ]
    status = lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]  # noqa: E731
    watch_states(status, {"STARTING"})

    batch.terminate_job(jobId=job_id, reason="stopped while starting")

    try:
        seen = watch_states(status, TERMINAL, timeout_s=10)
    finally:
        release.set()
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert seen[-1] == "FAILED"
    assert job["statusReason"] == "stopped while starting"
    assert "RUNNING" not in seen


def test_terminate_job_stops_the_running_process(batch):
    register(batch, "sleepy", "hello-batch")
    job_id = batch.submit_job(
        jobName="sleepy",
        jobQueue="sandbox-queue",
        jobDefinition="sleepy",
        containerOverrides={
            "command": ["python", "-c", "import time; print('sleeping', flush=True); time.sleep(120)"]
        },
    )["jobId"]
    watch_states(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"], {"RUNNING"})

    batch.terminate_job(jobId=job_id, reason="stopped by the test")

    seen = watch_states(
        lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"], TERMINAL, timeout_s=30
    )
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert seen[-1] == "FAILED"
    assert job["statusReason"] == "stopped by the test"
