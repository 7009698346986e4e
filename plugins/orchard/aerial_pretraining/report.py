"""aerial_pretraining's run report: loss curve, mAP table, per-class AP, console links, cost estimate.

Runs in tasks only; S3 access goes through the S3Hook the task passes in.
"""

from __future__ import annotations

import json
from datetime import UTC

from orchard.aerial_pretraining import DAG_ID


def read_from_model_tar(s3, uri: str, member: str) -> dict:
    """One JSON member of a SageMaker model.tar.gz / output.tar.gz in S3."""
    import io
    import tarfile

    bucket, key = s3.parse_s3_url(uri)
    body = s3.get_key(key, bucket).get()["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        handle = archive.extractfile(member)
        if handle is None:
            raise FileNotFoundError(f"{member} missing from {uri}")
        return json.load(handle)


def read_history(s3, pretrained: dict) -> list[dict]:
    """The pretraining job's per-epoch loss history (history.json in its output.tar.gz); [] if absent."""
    output = pretrained["Training"]["ModelArtifacts"]["S3ModelArtifacts"].replace(
        "model.tar.gz", "output.tar.gz"
    )
    try:
        return read_from_model_tar(s3, output, "history.json")
    except Exception as error:  # a report without the curve beats no report
        print(f"no loss history in {output}: {error}")
        return []


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


def job_attempts(base: str, describe) -> list[dict]:
    """Every attempt a task started under `base` (`base`, `base-r2`, ...: orchard's retries), oldest first."""
    from orchard.operators.sagemaker_job_retry import attempt_name, latest_attempt

    count, _ = latest_attempt(base, describe)
    return [describe(attempt_name(base, attempt)) for attempt in range(1, count + 1)]


def cost_lines(run_id: str, settings, params: dict, hook=None) -> list[dict]:
    """One cost line per job ATTEMPT of the run: instance type x count x the billable seconds AWS reports.

    A task retry after a failed or stopped job starts a new job (`<name>-r2`): the failed one billed its
    instances too, so every attempt is a line, not only the one the XCom holds. A managed-spot job restarted
    after an interruption is still one job: its BillableTimeInSeconds covers all of its runs ("Managed Spot
    Training", https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html).
    """
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    from orchard.aerial_pretraining.requests import job_name

    hook = hook or SageMakerHook(aws_conn_id=settings.aws_conn_id)
    lines = []
    prepare = job_name("sagemaker_processing_job", run_id, "prepare")
    for processing in job_attempts(prepare, hook.describe_processing_job):
        # Processing jobs report no billable time: their instances bill from start to end.
        start, end = processing.get("ProcessingStartTime"), processing.get("ProcessingEndTime")
        cluster = processing["ProcessingResources"]["ClusterConfig"]
        lines.append(
            {
                "job": processing["ProcessingJobName"],
                "service": "sagemaker",
                "instance_type": cluster["InstanceType"],
                "instance_count": cluster["InstanceCount"],
                "billable_seconds": max((end - start).total_seconds(), 1) if start and end else 0,
            }
        )
    for suffix in ("pretrain", "probe-aerial-dino", "probe-baseline"):
        base = job_name("sagemaker_training_job", run_id, suffix)
        for job in job_attempts(base, hook.describe_training_job):
            # AWS: BillableTimeInSeconds is per instance (spot discount already applied) x InstanceCount.
            billable = job.get("BillableTimeInSeconds") or job.get("TrainingTimeInSeconds") or 0
            lines.append(
                {
                    "job": job["TrainingJobName"],
                    "service": "sagemaker",
                    "instance_type": job["ResourceConfig"]["InstanceType"],
                    "instance_count": job["ResourceConfig"]["InstanceCount"],
                    "billable_seconds": billable,
                }
            )
    return [{**line, "region": settings.region} for line in lines]


def build_report(
    run_id, settings, params, prepared, pretrained, probes, evaluation, decision, registered, history
):
    """The run's Report (not yet published): outcome, metrics, mAP table, figures, console links, cost."""
    from orchard.reports import Report, new_figure

    report = Report("Aerial pretraining: DINO on BigEarthNet-S2", DAG_ID, run_id)
    outcome = "**PROMOTED**" if decision["promoted"] else "**NOT PROMOTED**"
    arn = (registered or {}).get("model_package_arn")
    report.add_text(
        f"{outcome}: {decision['reason']}."
        + (f" Model package: `{arn}` (PendingManualApproval)." if arn else "")
    )
    new, base = evaluation["aerial-dino"], evaluation["baseline"]
    report.add_metrics(
        {
            "new backbone test mAP (macro)": round(new["macro_mAP"], 4),
            "baseline test mAP (macro)": round(base["macro_mAP"], 4),
            "mAP gain": round(new["macro_mAP"] - base["macro_mAP"], 4),
            "test patches": new["samples"],
            "arch": f"{params['arch']}/{params['patch_size']}",
            "epochs": params["epochs"],
        }
    )
    report.add_table(
        [
            [
                f"{params['arch']}/{params['patch_size']} (baseline checkpoint)",
                f"{base['macro_mAP']:.3f}",
                f"{base['micro_AP']:.3f}",
            ],
            [
                f"{params['arch']}/{params['patch_size']} (BigEarthNet-S2, this run)",
                f"{new['macro_mAP']:.3f}",
                f"{new['micro_AP']:.3f}",
            ],
        ],
        headers=["Model", "Mean average precision (macro)", "Micro AP"],
        title="Linear probe on the test split",
    )
    if history:
        fig = new_figure(figsize=(6, 3.5))
        axis = fig.add_subplot()
        axis.plot([h["epoch"] + 1 for h in history], [h["loss"] for h in history], marker="o")
        axis.set(xlabel="epoch", ylabel="DINO loss (train)", title="Pretraining loss")
        report.add_figure("loss_curve", fig, "Mean DINO loss per epoch")
    add_pretrain_instance_metrics(report, settings, pretrained)
    labels = list(new["per_class_AP"])
    fig = new_figure(figsize=(8, 6))
    axis = fig.add_subplot()
    positions = range(len(labels))
    for offset, (name, metrics) in ((-0.2, ("baseline", base)), (0.2, ("this run", new))):
        axis.barh(
            [p + offset for p in positions],
            [metrics["per_class_AP"][k] or 0 for k in labels],
            height=0.4,
            label=name,
        )
    axis.set_yticks(list(positions), [label[:40] for label in labels], fontsize=7)
    axis.set(xlabel="average precision (test)", title="Per-class AP")
    axis.legend()
    fig.tight_layout()
    report.add_figure(
        "per_class_ap",
        fig,
        "Per-class AP; classes without a test positive show 0 and are left out of the macro mean",
    )
    region = settings.region
    report.add_console_link("sagemaker_processing_job", prepared["Processing"]["ProcessingJobName"], region)
    report.add_console_link("sagemaker_training_job", pretrained["Training"]["TrainingJobName"], region)
    for probe in probes:
        report.add_console_link("sagemaker_training_job", probe["Training"]["TrainingJobName"], region)
    report.add_cost(cost_lines(run_id, settings, params))
    return report


def add_pretrain_instance_metrics(report, settings, pretrained: dict) -> None:
    """The pretraining job's GPU / CPU / memory utilization (CloudWatch) in the report; a failure to read
    them is said in the report instead of failing it."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from botocore.exceptions import BotoCoreError, ClientError

    name = pretrained["Training"]["TrainingJobName"]
    job = SageMakerHook(aws_conn_id=settings.aws_conn_id).describe_training_job(name)
    cloudwatch = AwsBaseHook(aws_conn_id=settings.aws_conn_id, client_type="cloudwatch").get_conn()
    try:
        series = read_instance_metrics(cloudwatch, job)
    except (BotoCoreError, ClientError) as error:  # e.g. no cloudwatch:GetMetricData on the role
        report.add_text(f"Instance metrics of `{name}` unavailable: {error}")
        return
    add_instance_metrics(report, series, name)
