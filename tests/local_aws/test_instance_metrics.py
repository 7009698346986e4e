"""instance_metrics: a training job's CPU / memory from /proc, in CloudWatch as SageMaker has them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from local_aws import instance_metrics

BUSY = (
    "import time\nblob = bytearray(64 * 1024 * 1024)\nend = time.time() + 30\nwhile time.time() < end: pass\n"
)


@pytest.fixture
def busy_job():
    name = f"metrics-test-{os.getpid()}-{time.monotonic_ns()}"
    process = subprocess.Popen([sys.executable, "-c", BUSY], env={**os.environ, "TRAINING_JOB_NAME": name})
    try:
        yield name, process.pid
    finally:
        process.kill()
        process.wait()


def test_the_jobs_processes_are_found_by_their_environment(busy_job):
    name, pid = busy_job
    assert instance_metrics.job_processes(name) == [pid]
    assert instance_metrics.job_processes(name + "-other") == []


@pytest.mark.serial
def test_cpu_and_memory_of_a_busy_job(busy_job):
    name, _ = busy_job
    sampler = instance_metrics.Sampler(name)
    time.sleep(1.5)
    values = sampler.sample()
    # a busy loop: most of one core (shared machine: at least a fifth of it); 64 MiB resident at least
    assert 20 <= values["CPUUtilization"] <= 100 * (os.cpu_count() or 1)
    mem_total = instance_metrics._mem_total_bytes(instance_metrics.PROC)
    assert values["MemoryUtilization"] >= 100 * 60 * 2**20 / mem_total
    assert set(values) == {"CPUUtilization", "MemoryUtilization"}  # no GPU here: no GPU metric invented


def test_no_process_no_sample():
    assert instance_metrics.Sampler("no-such-training-job").sample() is None


def test_published_under_sagemakers_namespace_and_host_dimension(in_process_moto):
    with mock_aws():
        account = "123456789012"
        values = {"CPUUtilization": 150.0, "MemoryUtilization": 12.5}
        instance_metrics.put(account, "us-east-1", "job-a", values)
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        listed = cloudwatch.list_metrics(Namespace="/aws/sagemaker/TrainingJobs")["Metrics"]
        assert {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed} == {
            ("CPUUtilization", "job-a/algo-1"),
            ("MemoryUtilization", "job-a/algo-1"),
        }
        now = datetime.now(UTC)
        data = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "cpu",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "/aws/sagemaker/TrainingJobs",
                            "MetricName": "CPUUtilization",
                            "Dimensions": [{"Name": "Host", "Value": "job-a/algo-1"}],
                        },
                        "Period": 60,
                        "Stat": "Average",
                    },
                }
            ],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
        )
        assert data["MetricDataResults"][0]["Values"] == [150.0]


def test_a_job_shorter_than_the_period_still_gets_a_point(in_process_moto):
    name = f"metrics-short-{os.getpid()}-{time.monotonic_ns()}"
    short = "import time\nend = time.time() + 2.5\nwhile time.time() < end: pass\n"
    with mock_aws():
        done = False
        thread = instance_metrics.publish_while(
            lambda: not done, "123456789012", "us-east-1", name, period_s=60
        )
        subprocess.run(
            [sys.executable, "-c", short], env={**os.environ, "TRAINING_JOB_NAME": name}, check=True
        )
        time.sleep(2.5)  # the sampler notices the processes are gone and puts what it has
        done = True
        thread.join(timeout=5)
        listed = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(
            Namespace="/aws/sagemaker/TrainingJobs", Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}]
        )
        assert {m["MetricName"] for m in listed["Metrics"]} == {"CPUUtilization", "MemoryUtilization"}
