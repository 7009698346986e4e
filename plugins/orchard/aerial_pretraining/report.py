"""aerial_pretraining's run report: loss curve, mAP table, per-class AP, instance metrics, console links,
cost estimate; and what the run announces (Asset event `extra`, metrics, attention items).

Runs in tasks only; its boto3 clients come from orchard.aws.clients (one session for the three services).
"""

from __future__ import annotations

from typing import NamedTuple

from orchard.aerial_pretraining import DAG_ID
from orchard.aerial_pretraining.evaluation import read_evaluation, read_from_model_tar
from orchard.aerial_pretraining.instance_metrics import (
    add_pretrain_instance_metrics,
    pretrain_instance_metrics,
)
from orchard.aerial_pretraining.plan import model_artifacts


class ReportInputs(NamedTuple):
    """What the report reads from AWS besides evaluation.json."""

    history: list[dict]  # the pretraining job's per-epoch loss (read_history)
    instance_metrics: tuple[str, dict | str]  # pretrain_instance_metrics
    cost_lines: list[dict]  # cost_lines


def read_history(s3, pretrained: dict) -> list[dict]:
    """The pretraining job's per-epoch loss history (history.json in its output.tar.gz); [] if absent."""
    output = model_artifacts(pretrained).replace("model.tar.gz", "output.tar.gz")
    try:
        return read_from_model_tar(s3, output, "history.json")
    except Exception as error:  # a report without the curve beats no report
        print(f"no loss history in {output}: {error}")
        return []


def job_attempts(base: str, describe) -> list[dict]:
    """Every attempt a task started under `base` (`base`, `base-r2`, ...: orchard's retries), oldest first."""
    from orchard.operators.sagemaker_job_retry import attempt_name, latest_attempt

    count, _ = latest_attempt(base, describe)
    return [describe(attempt_name(base, attempt)) for attempt in range(1, count + 1)]


def processing_cost_line(job: dict) -> dict:
    """Processing jobs report no billable time: their instances bill from start to end."""
    start, end = job.get("ProcessingStartTime"), job.get("ProcessingEndTime")
    cluster = job["ProcessingResources"]["ClusterConfig"]
    return {
        "job": job["ProcessingJobName"],
        "service": "sagemaker",
        "instance_type": cluster["InstanceType"],
        "instance_count": cluster["InstanceCount"],
        "billable_seconds": max((end - start).total_seconds(), 1) if start and end else 0,
    }


def training_cost_line(job: dict) -> dict:
    """AWS: BillableTimeInSeconds is per instance (spot discount already applied) x InstanceCount."""
    return {
        "job": job["TrainingJobName"],
        "service": "sagemaker",
        "instance_type": job["ResourceConfig"]["InstanceType"],
        "instance_count": job["ResourceConfig"]["InstanceCount"],
        "billable_seconds": job.get("BillableTimeInSeconds") or job.get("TrainingTimeInSeconds") or 0,
    }


def cost_lines(run_id: str, region: str, sagemaker) -> list[dict]:
    """One cost line per job ATTEMPT of the run: instance type x count x the billable seconds AWS reports.

    A task retry after a failed or stopped job starts a new job (`<name>-r2`): the failed one billed its
    instances too, so every attempt is a line, not only the one the XCom holds. A managed-spot job restarted
    after an interruption is still one job: its BillableTimeInSeconds covers all of its runs ("Managed Spot
    Training", https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html).
    `sagemaker` is a boto3 SageMaker client; the four jobs' attempts are looked up at once (a thread each).
    """
    from concurrent.futures import ThreadPoolExecutor

    from orchard.aerial_pretraining.plan import RUN_JOBS, job_name

    def describe_processing(name: str) -> dict:
        return sagemaker.describe_processing_job(ProcessingJobName=name)

    def describe_training(name: str) -> dict:
        return sagemaker.describe_training_job(TrainingJobName=name)

    def lines_of(kind: str, resource: str, suffix: str) -> list[dict]:
        base = job_name(resource, run_id, suffix)
        if kind == "Processing":
            return [processing_cost_line(job) for job in job_attempts(base, describe_processing)]
        return [training_cost_line(job) for job in job_attempts(base, describe_training)]

    with ThreadPoolExecutor(max_workers=len(RUN_JOBS)) as pool:
        per_job = list(pool.map(lambda job: lines_of(*job), RUN_JOBS))  # RUN_JOBS' order: a stable table
    return [{**line, "region": region} for lines in per_job for line in lines]


def publish_run_report(
    run_id: str,
    params: dict,
    prepared: dict,
    pretrained: dict,
    probes: list,
    evaluation: dict,
    promotion: dict,
) -> str:
    """Build the run report from the tasks' XComs (`promotion`: what register_model or not_promoted
    returned) and publish it to the reports bucket; returns its s3:// URI.

    Its inputs are four independent reads (the loss history, evaluation.json, the pretraining job's
    instance metrics, every job attempt's cost): fetched at once, each in a thread, with the three
    services' clients from one session (orchard.aws.clients), so the task waits for the slowest read, not
    for their sum, and pays one AssumeRole instead of five (benchmarks/aerial_pretraining_task_time.py).
    """
    from concurrent.futures import ThreadPoolExecutor

    from orchard import aws
    from orchard.settings import load_settings

    settings = load_settings()
    s3, sagemaker, cloudwatch = aws.clients("s3", "sagemaker", "cloudwatch", conn_id=settings.aws_conn_id)
    with ThreadPoolExecutor(max_workers=4) as pool:
        history = pool.submit(read_history, s3, pretrained)
        evaluation_doc = pool.submit(read_evaluation, s3, evaluation)
        metrics = pool.submit(pretrain_instance_metrics, sagemaker, cloudwatch, pretrained)
        costs = pool.submit(cost_lines, run_id, settings.region, sagemaker)
        inputs = ReportInputs(history.result(), metrics.result(), costs.result())
        report = build_report(
            run_id, settings, params, prepared, pretrained, probes, evaluation_doc.result(), promotion, inputs
        )
    return report.publish(s3, settings.reports_bucket, settings.reports_prefix)


def asset_extra(pretrained: dict, evaluation: dict, promotion: dict, report_uri: str) -> dict:
    """The backbone Asset event's own `extra` (announce adds the run summary to it)."""
    return {
        "model_url": model_artifacts(pretrained),
        "promoted": promotion["promoted"],
        "test_mAP": evaluation["new_mAP"],
        "report_uri": report_uri,
    }


def announcement(evaluation: dict, promotion: dict) -> dict:
    """orchard.run_results.announce's metrics and attention items: "not promoted" is a result to look at,
    not a failed run."""
    return {
        "metrics": {"test mAP": evaluation["new_mAP"], "promoted": promotion["promoted"]},
        "attention": [] if promotion["promoted"] else [f"not promoted: {promotion['reason']}"],
    }


def build_report(run_id, settings, params, prepared, pretrained, probes, evaluation, promotion, inputs):
    """The run's Report (not yet published): outcome, metrics, mAP table, figures, console links, cost.

    `evaluation` is the full evaluation.json; `promotion` the gate's decision (+ the model package ARN);
    `inputs` what publish_run_report read from AWS."""
    from orchard.reports import Report, new_figure

    report = Report("Aerial pretraining: DINO on BigEarthNet-S2", DAG_ID, run_id)
    outcome = "**PROMOTED**" if promotion["promoted"] else "**NOT PROMOTED**"
    arn = promotion.get("model_package_arn")
    report.add_text(
        f"{outcome}: {promotion['reason']}."
        + (
            f" Model package: `{arn}` ({promotion.get('ModelApprovalStatus', 'PendingManualApproval')})."
            if arn
            else ""
        )
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
    history = inputs.history
    if history:
        fig = new_figure(figsize=(6, 3.5))
        axis = fig.add_subplot()
        axis.plot([h["epoch"] + 1 for h in history], [h["loss"] for h in history], marker="o")
        axis.set(xlabel="epoch", ylabel="DINO loss (train)", title="Pretraining loss")
        report.add_figure("loss_curve", fig, "Mean DINO loss per epoch")
    add_pretrain_instance_metrics(report, *inputs.instance_metrics)
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
    report.add_cost(inputs.cost_lines)
    return report
