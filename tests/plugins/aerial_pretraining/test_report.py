"""aerial_pretraining's report: the cost of every job attempt."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from orchard import pricing
from orchard.aerial_pretraining.plan import job_name
from orchard.aerial_pretraining.report import cost_lines
from orchard.operators.sagemaker_job_retry import attempt_name

RUN_ID = "manual__2026-11-21T10:00:00+00:00"


class _SageMaker:
    """describe_* over a fixed set of jobs; an unknown name fails as SageMaker does."""

    def __init__(self, jobs: dict[str, dict]):
        self.jobs = jobs

    def _describe(self, name: str) -> dict:
        if name not in self.jobs:
            error = {"Error": {"Code": "ValidationException", "Message": f"Could not find job {name}"}}
            raise ClientError(error, "Describe")
        return self.jobs[name]

    def describe_training_job(self, *, TrainingJobName: str) -> dict:  # noqa: N803 (boto3's argument)
        return self._describe(TrainingJobName)

    def describe_processing_job(self, *, ProcessingJobName: str) -> dict:  # noqa: N803 (boto3's argument)
        return self._describe(ProcessingJobName)


def _training(name: str, seconds: int, instance_type="ml.p3.16xlarge", count=1) -> dict:
    return {
        "TrainingJobName": name,
        "BillableTimeInSeconds": seconds,
        "TrainingTimeInSeconds": seconds,
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count},
    }


def _jobs(pretrain_attempts: list[int]) -> dict[str, dict]:
    prepare = job_name("sagemaker_processing_job", RUN_ID, "prepare")
    start = datetime(2026, 11, 21, 10)
    cluster = {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}
    jobs = {
        prepare: {
            "ProcessingJobName": prepare,
            "ProcessingStartTime": start,
            "ProcessingEndTime": start + timedelta(minutes=30),
            "ProcessingResources": cluster,
        }
    }
    base = job_name("sagemaker_training_job", RUN_ID, "pretrain")
    for attempt, seconds in enumerate(pretrain_attempts, start=1):
        jobs[attempt_name(base, attempt)] = _training(attempt_name(base, attempt), seconds)
    for backbone in ("aerial-dino", "baseline"):
        name = job_name("sagemaker_training_job", RUN_ID, f"probe-{backbone}")
        jobs[name] = _training(name, 600, "ml.p3.2xlarge")
    return jobs


def test_every_attempt_of_a_retried_job_is_billed():
    # attempt 1 failed after 5 h on 8 GPUs, attempt 2 (-r2) completed in 11 h: both billed their instances.
    lines = cost_lines(RUN_ID, "us-east-1", _SageMaker(_jobs([5 * 3600, 11 * 3600])))
    base = job_name("sagemaker_training_job", RUN_ID, "pretrain")
    pretrain = [line for line in lines if line["job"] in (base, attempt_name(base, 2))]
    assert [line["billable_seconds"] for line in pretrain] == [5 * 3600, 11 * 3600]
    assert pretrain[1]["job"].endswith("-r2")
    assert len(lines) == 5  # prepare + 2 pretrain attempts + 2 probes
    assert {line["region"] for line in lines} == {"us-east-1"}


def test_total_cost_counts_the_failed_attempt():
    from orchard.reports import Report

    single = (
        Report("t", "aerial_pretraining", RUN_ID)
        .add_cost(cost_lines(RUN_ID, "us-east-1", _SageMaker(_jobs([11 * 3600]))))
        .cost_usd
    )
    retried = (
        Report("t", "aerial_pretraining", RUN_ID)
        .add_cost(cost_lines(RUN_ID, "us-east-1", _SageMaker(_jobs([5 * 3600, 11 * 3600]))))
        .cost_usd
    )
    # the failed 5 h attempt on ml.p3.16xlarge adds 5/11 of the completed attempt's cost
    pretrain_11h = 11 * pricing.hourly_price("sagemaker", "ml.p3.16xlarge", "us-east-1")
    assert retried - single == pytest.approx(pretrain_11h * 5 / 11, rel=1e-6)


class _SageMakerAnsweringOnlyConcurrentLookups(_SageMaker):
    """Each job's first describe answers only once all four jobs are being looked up (a barrier)."""

    def __init__(self, jobs: dict[str, dict]):
        super().__init__(jobs)
        self.barrier, self.waited = threading.Barrier(4, timeout=10), set()

    def _describe(self, name: str) -> dict:
        if threading.get_ident() not in self.waited:
            self.waited.add(threading.get_ident())
            self.barrier.wait()
        return super()._describe(name)


def test_the_four_jobs_attempts_are_looked_up_at_once():
    lines = cost_lines(RUN_ID, "us-east-1", _SageMakerAnsweringOnlyConcurrentLookups(_jobs([11 * 3600])))

    # the run's jobs in RUN_JOBS' order, whichever lookup finished first
    suffixes = ["prepare", "pretrain", "probe-aerial-dino", "probe-baseline"]
    assert [line["job"] for line in lines] == [
        job_name("sagemaker_processing_job" if s == "prepare" else "sagemaker_training_job", RUN_ID, s)
        for s in suffixes
    ]
