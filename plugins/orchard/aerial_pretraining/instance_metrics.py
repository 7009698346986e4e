"""The CloudWatch instance metrics of aerial_pretraining's pretraining job (GPU / CPU / memory utilization)
for its run report.

Runs in tasks only; the task passes in its boto3 clients (orchard.aws).
"""

from __future__ import annotations

from datetime import UTC

# Training jobs' instance metrics ("Amazon SageMaker AI metrics in Amazon CloudWatch", job metrics:
# https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html): namespace, one `Host`
# dimension `<job>/algo-<n>` per instance, 1-minute data; GPU and CPU utilization summed over devices / cores.
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
INSTANCE_METRICS = ("GPUUtilization", "GPUMemoryUtilization", "CPUUtilization", "MemoryUtilization")


def metrics_period(start, end, now) -> int:
    """60 s (SageMaker's resolution); 10 s for a job under 10 min that started < 3 h ago (GetMetricData only
    serves sub-minute periods for data under 3 h old), so a short job still shows a curve."""
    from datetime import timedelta

    return 10 if end - start < timedelta(minutes=10) and now - start < timedelta(hours=3) else 60


def read_instance_metrics(cloudwatch, job: dict) -> dict[str, dict[str, tuple[list, list]]]:
    """{metric: {host: (timestamps, values)}} of a training job from CloudWatch (metrics with data only).

    `job` is DescribeTrainingJob's answer (real datetimes, not the XCom's strings).
    """
    from datetime import datetime, timedelta

    name, count = job["TrainingJobName"], job["ResourceConfig"]["InstanceCount"]
    now = datetime.now(UTC)
    start = job.get("TrainingStartTime") or job["CreationTime"]
    end = job.get("TrainingEndTime") or now
    period = metrics_period(start, end, now)
    hosts = [f"{name}/algo-{n}" for n in range(1, count + 1)]
    queries, keys = [], {}
    for i, metric in enumerate(INSTANCE_METRICS):
        for j, host in enumerate(hosts):
            keys[f"m{i}h{j}"] = (metric, host)
            queries.append(
                {
                    "Id": f"m{i}h{j}",
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": METRICS_NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": [{"Name": "Host", "Value": host}],
                        },
                        "Period": period,
                        "Stat": "Average",
                    },
                }
            )
    series: dict[str, dict[str, tuple[list, list]]] = {}
    pages = cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries,
        StartTime=start - timedelta(seconds=period),
        EndTime=end + timedelta(seconds=period),
        ScanBy="TimestampAscending",
    )
    for page in pages:
        for result in page["MetricDataResults"]:
            if result["Values"]:
                metric, host = keys[result["Id"]]
                times, values = series.setdefault(metric, {}).setdefault(host, ([], []))
                for timestamp, value in sorted(zip(result["Timestamps"], result["Values"])):
                    times.append(timestamp)
                    values.append(value)
    return series


def add_instance_metrics(report, series: dict[str, dict[str, tuple[list, list]]], job_name: str) -> None:
    """One panel per metric with data (a line per host); the caption names the metrics that had none."""
    from orchard.reports import new_figure

    missing = [m for m in INSTANCE_METRICS if m not in series]
    absent = (
        f" No data for {', '.join(missing)}: a CPU instance, or the local sandbox (no GPU), publishes none."
        if missing
        else ""
    )
    if not series:
        report.add_text(f"No instance metrics in CloudWatch `{METRICS_NAMESPACE}` for `{job_name}`.{absent}")
        return
    fig = new_figure(figsize=(7, 2.4 * len(series)))
    for index, (metric, hosts) in enumerate(series.items(), start=1):
        axis = fig.add_subplot(len(series), 1, index)
        for host, (times, values) in hosts.items():
            start = times[0]
            minutes = [(t - start).total_seconds() / 60 for t in times]
            axis.plot(minutes, values, marker=".", label=host.rsplit("/", 1)[1])
        axis.set(ylabel=f"{metric} (%)")
        axis.legend(fontsize=7)
    axis.set(xlabel="minutes since the first data point")
    fig.tight_layout()
    report.add_figure(
        "instance_metrics",
        fig,
        f"Pretraining job instance metrics from CloudWatch `{METRICS_NAMESPACE}` (Host "
        f"`{job_name}/algo-N`; GPU and CPU summed over devices / cores).{absent}",
    )


def pretrain_instance_metrics(sagemaker, cloudwatch, pretrained: dict) -> tuple[str, dict | str]:
    """(job name, its series as read_instance_metrics gives them) of the pretraining job, or (job name, why
    they are unavailable): a failure to read them is said in the report instead of failing it.
    `sagemaker`, `cloudwatch`: boto3 clients."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = pretrained["Training"]["TrainingJobName"]
    job = sagemaker.describe_training_job(TrainingJobName=name)
    try:
        return name, read_instance_metrics(cloudwatch, job)
    except (BotoCoreError, ClientError) as error:  # e.g. no cloudwatch:GetMetricData on the role
        return name, f"Instance metrics of `{name}` unavailable: {error}"


def add_pretrain_instance_metrics(report, name: str, series: dict | str) -> None:
    """pretrain_instance_metrics' answer in the report: the panels, or why there are none."""
    if isinstance(series, str):
        report.add_text(series)
        return
    add_instance_metrics(report, series, name)
