"""What `pose_training` checks after the job, and the run report it publishes.

`check_export` trusts the job's manifest only as far as S3 agrees: every file it lists must be in the
output prefix with its size, and the exported model, the evaluation results and DeepLabCut's evaluation
plots (`evaluate_network(..., plotting=True)`: the labeled train and test images, human labels against
the network's predictions) must be among them. The report shows the first train and test plot.

A run can train several projects (one per upload): each project's report goes to its own folder,
`<reports_prefix>/<dag_id>/<run>/<project>/report.md`.
"""

from __future__ import annotations

import json
from typing import Any


class ExportIncomplete(RuntimeError):
    """The job ended SUCCEEDED but its output is not all in S3."""


def check_export(s3: Any, bucket: str, prefix: str) -> dict:
    """The manifest of `s3://bucket/prefix`, once its files are all there; raises ExportIncomplete."""
    where = f"s3://{bucket}/{prefix}"
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}manifest.json")["Body"].read())
    except s3.exceptions.NoSuchKey:
        raise ExportIncomplete(f"no manifest.json in {where}: the job did not finish its export") from None
    stored = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stored.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    wrong = [f["key"] for f in manifest["files"] if stored.get(f["key"]) != f["bytes"]]
    if wrong:
        raise ExportIncomplete(
            f"{len(wrong)} file(s) of the manifest missing or truncated in {where}: {wrong[:5]}"
        )
    keys = [f["key"] for f in manifest["files"]]
    if not any(k.startswith(f"{prefix}model/") and k.endswith(".pt") for k in keys):
        raise ExportIncomplete(f"no exported model (model/**.pt) in {where}")
    if not any(k.endswith("CombinedEvaluation-results.csv") for k in keys):
        raise ExportIncomplete(f"no evaluation results (CombinedEvaluation-results.csv) in {where}")
    if not manifest.get("metrics"):
        raise ExportIncomplete(f"the manifest in {where} has no evaluation metrics")
    plots = manifest.get("evaluation_plots") or {}
    if not any(plots.get(split) for split in ("train", "test")):
        raise ExportIncomplete(f"no evaluation plots (evaluate_network plotting=True) in {where}")
    unlisted = [k for split in ("train", "test") for k in plots.get(split, []) if k not in keys]
    if unlisted:
        raise ExportIncomplete(f"evaluation plots not among the exported files in {where}: {unlisted[:5]}")
    return manifest


def publish_export(run: dict, batch: dict, job_id: str) -> dict:
    """The DAG's `check_export`: the project's export checked (`check_export`), its report published.

    Returns what the task hands on: the project, its model and report URIs and its metrics."""
    from orchard import aws
    from orchard.settings import load_settings

    settings = load_settings()  # once: each read looks up every Airflow Variable the environment lacks
    s3, batch_client = aws.clients("s3", "batch", conn_id=settings.aws_conn_id)
    bucket, _, prefix = run["output_uri"][len("s3://") :].partition("/")
    manifest = check_export(s3, bucket, prefix)
    [job] = batch_client.describe_jobs(jobs=[job_id])["jobs"]
    plots = evaluation_plots(s3, bucket, manifest)
    report = build_report(run, manifest, job, batch, settings.region, plots=plots)
    return {
        "project_uri": run["project_uri"],
        "model_uri": run["output_uri"],
        "report_uri": report.publish(s3, settings.reports_bucket, settings.reports_prefix),
        "metrics": manifest["metrics"],
    }


def models_extra(exported: dict) -> dict:
    """The `pose_training.models` Asset event's extra for one exported project."""
    return {
        "model_uri": exported["model_uri"],
        "report_uri": exported["report_uri"],
        "project_uri": exported["project_uri"],
        "test_rmse": exported["metrics"].get("test rmse"),
    }


PLOTS_PER_SPLIT = 1  # figures per split in the report; all of them stay in S3 under evaluation/


def evaluation_plots(
    s3: Any, bucket: str, manifest: dict, per_split: int = PLOTS_PER_SPLIT
) -> dict[str, bytes]:
    """The first `per_split` train and test plots (PNG bytes), by figure name, for the report."""
    figures = {}
    for split in ("train", "test"):
        for index, key in enumerate((manifest.get("evaluation_plots") or {}).get(split, [])[:per_split]):
            figures[f"evaluation_{split}_{index + 1}"] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return figures


def billable_seconds(job: dict) -> float:
    """Seconds the job's attempts ran (startedAt -> stoppedAt, ms): what the GPU instance was busy."""
    attempts = job.get("attempts") or [job]
    total = 0.0
    for attempt in attempts:
        started, stopped = attempt.get("startedAt"), attempt.get("stoppedAt")
        if started and stopped:
            total += (stopped - started) / 1000.0
    return total


KEY_METRICS = ("train rmse", "test rmse", "train rmse_pcutoff", "test rmse_pcutoff", "test mAP", "test mAR")


def build_report(
    run: dict, manifest: dict, job: dict, batch: dict, region: str, plots: dict[str, bytes] | None = None
) -> Any:
    """The project's report: key metrics, learning curve, evaluation plots, console link, cost estimate."""
    from orchard.pose_training.upload import project_slug
    from orchard.reports import Report, new_figure

    class ProjectReport(Report):
        def key_prefix(self, prefix: str = "") -> str:
            return f"{super().key_prefix(prefix)}{project_slug(run.get('key') or run['project_uri'])}/"

    report = ProjectReport("Pose training (DeepLabCut on AWS Batch)", run["dag_id"], run["run_id"])
    report.add_text(
        f"Project `{run['project_uri']}` ({run['source']}), {manifest['net_type']}, "
        f"{manifest['epochs']} epoch(s), batch size {manifest['batch_size']}, backbone weights: "
        f"{manifest['backbone_weights']}. Model exported to `{run['output_uri']}`."
    )
    metrics = {name: manifest["metrics"].get(name) for name in KEY_METRICS if name in manifest["metrics"]}
    metrics["labeled frames"] = run.get("labeled_frames")
    report.add_metrics({k: v for k, v in metrics.items() if v is not None})
    curve = manifest.get("learning_curve") or []
    if curve:
        fig = new_figure(figsize=(6, 3.5))
        axis = fig.add_subplot()
        steps = [row.get("step", i + 1) for i, row in enumerate(curve)]
        for column in sorted({c for row in curve for c in row if "loss" in c}):
            axis.plot(steps, [row.get(column) for row in curve], marker="o", label=column)
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss")
        axis.legend()
        report.add_figure("learning_curve", fig, caption="Training loss per epoch (learning_stats.csv)")
    listed = manifest.get("evaluation_plots") or {}
    total = {split: len(listed.get(split, [])) for split in ("train", "test")}
    for name, png in (plots or {}).items():
        split = "training" if "_train_" in name else "test"
        report.add_figure(
            name,
            png,
            caption=(
                f"DeepLabCut evaluation, a {split} image: human labels (+) against predictions (dots: "
                f"likelihood >= pcutoff, x: below); {total['train']} train and {total['test']} test plots "
                "under evaluation/"
            ),
        )
    report.add_table(
        [[f["key"].rsplit("/", 1)[-1], f"{f['bytes']:,}"] for f in manifest["files"]],
        headers=["file", "bytes"],
        title="Exported files",
    )
    report.add_console_link("batch_job", job["jobId"], region, label=job["jobName"])
    seconds = billable_seconds(job)
    report.add_cost(
        [
            {
                "job": job["jobName"],
                "service": "batch",
                "instance_type": batch["instance_type"],
                "billable_seconds": seconds,
                "region": region,
            }
        ],
        region=region,
    )
    if batch.get("capacity") == "SPOT":
        report.add_text("The cost uses the on-demand price: an upper bound for this SPOT capacity.")
    return report
