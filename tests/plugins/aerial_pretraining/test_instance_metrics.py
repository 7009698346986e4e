"""The pretraining job's instance metrics from CloudWatch, and their panel in the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchard.aerial_pretraining.plan import job_name

RUN_ID = "manual__2026-11-21T10:00:00+00:00"


def test_report_plots_the_training_jobs_instance_metrics_from_cloudwatch(in_process_moto):
    import boto3
    from moto import mock_aws

    from orchard.aerial_pretraining.instance_metrics import add_instance_metrics, read_instance_metrics
    from orchard.reports import Report

    name = job_name("sagemaker_training_job", RUN_ID, "pretrain")
    now = datetime.now(UTC).replace(microsecond=0)
    job = {
        "TrainingJobName": name,
        "ResourceConfig": {"InstanceType": "ml.p3.16xlarge", "InstanceCount": 2},
        "CreationTime": now - timedelta(minutes=6),
        "TrainingStartTime": now - timedelta(minutes=5),
        "TrainingEndTime": now,
    }
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for minute in range(5):
            at = now - timedelta(minutes=5 - minute)
            for host, gpu in (("algo-1", 700.0), ("algo-2", 650.0)):
                data = [
                    {
                        "MetricName": metric,
                        "Value": value,
                        "Unit": "Percent",
                        "Timestamp": at,
                        "Dimensions": [{"Name": "Host", "Value": f"{name}/{host}"}],
                    }
                    for metric, value in (("GPUUtilization", gpu + minute), ("CPUUtilization", 300.0))
                ]
                cloudwatch.put_metric_data(Namespace="/aws/sagemaker/TrainingJobs", MetricData=data)
        # another job's host, and another namespace: not this job's
        cloudwatch.put_metric_data(
            Namespace="/aws/sagemaker/TrainingJobs",
            MetricData=[
                {
                    "MetricName": "GPUUtilization",
                    "Value": 1.0,
                    "Dimensions": [{"Name": "Host", "Value": "other/algo-1"}],
                }
            ],
        )
        series = read_instance_metrics(cloudwatch, job)

    assert set(series) == {"GPUUtilization", "CPUUtilization"}  # nothing put for memory: left out
    assert set(series["GPUUtilization"]) == {f"{name}/algo-1", f"{name}/algo-2"}
    times, values = series["GPUUtilization"][f"{name}/algo-1"]
    assert values == [700.0, 701.0, 702.0, 703.0, 704.0] and times == sorted(times)

    report = Report("t", "aerial_pretraining", RUN_ID)
    add_instance_metrics(report, series, name)
    markdown = report.to_markdown()
    assert "instance_metrics" in markdown and "GPUMemoryUtilization, MemoryUtilization" in markdown


def test_report_says_when_there_are_no_instance_metrics():
    from orchard.aerial_pretraining.instance_metrics import add_instance_metrics
    from orchard.reports import Report

    report = Report("t", "aerial_pretraining", RUN_ID)
    add_instance_metrics(report, {}, "job-x")
    text = report.to_markdown()
    assert "No instance metrics" in text and "GPUUtilization" in text
