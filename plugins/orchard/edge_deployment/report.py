"""edge_deployment's run report: package, per-device outcome and predictions, int8 figures, drift plots,
cleanup, links and cost; and what the run announces (attention items: drift over threshold, the root cause
of a failed run)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from typing import Any

from orchard import naming
from orchard.pricing import HOURS_PER_MONTH, PER_UNIT_REGION, PRICES_AS_OF, unit_price
from orchard.settings import load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedReport:
    """What `publish_report` published: report.md's URI, and the metrics and cost it wrote to report.json,
    for orchard.run_results.announce (which would otherwise read report.json back: a session of its own)."""

    uri: str
    metrics: dict[str, Any]
    cost_usd: float | None


def publish_report(
    dag_id: str, run_id: str, results: dict[str, Any], outcomes: list | None, causes: Any = None
) -> PublishedReport:
    """Build and publish the run report.

    `results`: the upstream tasks' XComs by name (compiled, package, fleet, deployment, drift, removed,
    approval: compile, package, ensure_fleet, deploy, monitor, cleanup, approve_rollout); `outcomes`: deploy's per-device outcomes, which it
    pushes even when the rollout fails; `causes`: orchard.run_results.failure_causes, said first when the
    run failed.
    """
    from orchard import aws
    from orchard.edge_deployment.approval import report_text
    from orchard.reports import Report

    settings = load_settings()
    clients = aws.session_clients(settings.aws_conn_id)  # S3 and SageMaker on one session, built here
    s3, sagemaker = clients.client("s3"), clients.client("sagemaker")
    compiled, package, fleet = results.get("compiled"), results.get("package"), results.get("fleet")
    deployment, drift, removed = results.get("deployment"), results.get("drift"), results.get("removed")
    outcomes = (deployment or {}).get("outcomes") or outcomes or []
    prepare = naming.resource_name("sagemaker_processing_job", dag_id, run_id, "prepare")
    plots = bool(drift and drift.get("devices"))
    # The two reads are independent: at once; matplotlib (for the drift figures) is imported meanwhile.
    stored, prepare_job, _ = aws.at_once(
        partial(_stored_drift, s3, drift) if plots else dict,
        partial(_prepare_job, sagemaker, prepare),
        partial(import_module, "matplotlib.backends.backend_agg") if plots else dict,
    )
    report = Report("Edge deployment", dag_id, run_id)
    if causes:
        report.add_text(f"**FAILED** at {causes}: the first task's log has the reason.")
    if package:
        report.add_text(_package_text(package))
        report.add_table(
            sorted(package["files"].items()),
            ["File", "Bytes"],
            title="Package contents (+ manifest.json and its signature manifest.json.sig)",
        )
        report.add_metrics(_model_metrics(package, compiled), title="Model")
    else:
        report.add_text("No package was published in this run (an earlier task failed: see its log).")
    if approved := report_text(results.get("approval")):
        report.add_text(approved)
    if outcomes:
        report.add_table(
            [
                [
                    o["device"],
                    o["status"],
                    o["details"].get("predictions", ""),
                    o["details"].get("predictions_per_second", ""),
                    o["details"].get("captured", ""),
                    o["details"].get("reason", ""),
                ]
                for o in outcomes
            ],
            ["Device", "Outcome", "Predictions", "Predictions/s", "Captured", "Reason"],
            title="Deployment per device",
        )
    if plots:
        _add_drift(report, stored, drift)
    kept = "Nothing removed: the fleet stays (delete_fleet was not asked)."
    lines = "\n".join(f"- {line}" for line in removed or [])
    report.add_text("## Fleet deletion\n\n" + (lines or kept))
    _add_prepare_cost(report, prepare_job, settings.region, prepare)
    _add_links_and_cost(report, settings.region, compiled, fleet, deployment)
    uri = report.publish(s3, settings.reports_bucket, settings.reports_prefix)
    return PublishedReport(uri, report.metrics, report.cost_usd)


def announcement(results: dict[str, Any], causes: Any) -> dict[str, list[str]]:
    """orchard.run_results.announce's attention items: devices drifting over the threshold, the tasks that
    failed (the root causes, not the tasks that did not run because of them), and a refused rollout."""
    from orchard.edge_deployment.approval import attention
    from orchard.run_results import drift_attention

    failed = [f"failed at {t}" for t in causes.failed]
    return {"attention": drift_attention(results.get("drift")) + failed + attention(results.get("approval"))}


def _package_text(package: dict[str, Any]) -> str:
    return (
        f"## Package\n\n`{package['package_uri']}` — {package['size_bytes']:,} bytes, sha256 "
        f"`{package['sha256'][:16]}…`, variant **{package['variant']}**, manifest signed with "
        f"{package['signing_algorithm']} by `{package['signing_key_arn']}`."
    )


def _model_metrics(package: dict[str, Any], compiled: dict[str, Any] | None) -> dict[str, Any]:
    info, prepared = package.get("compiled") or {}, package.get("prepared") or {}
    metrics: dict[str, Any] = {
        "compiler": info.get("compiler"),
        "compile seconds": (compiled or {}).get("seconds"),
        "variant": package["variant"],
    }
    for name, size in (prepared.get("sizes_bytes") or {}).items():
        metrics[f"model size {name.replace('onnx_', '')} (ONNX bytes)"] = size
    metrics["compiled library (bytes)"] = (info.get("sizes_bytes") or {}).get("compiled.so")
    metrics["artifact layout"] = f"{info.get('layout')} (runtime {info.get('runtime')})"
    if prepared.get("int8_top1_agreement") is not None:
        metrics["int8 top-1 agreement with float32"] = prepared["int8_top1_agreement"]
        metrics["int8 agreement images"] = prepared.get("int8_agreement_images")
        metrics["int8 method"] = prepared.get("int8_method")
    if prepared.get("note"):
        metrics["note"] = prepared["note"]
    return metrics


def _stored_drift(s3: Any, drift: dict[str, Any]) -> dict[str, Any]:
    """The monitor's drift.json: its summary and the reference the figures are drawn against."""
    bucket, _, key = drift["drift_uri"][5:].partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _add_drift(report: Any, stored: dict[str, Any], drift: dict[str, Any]) -> None:
    from orchard.edge_deployment.drift import figures

    report.add_table(
        [
            [
                d,
                s["records"],
                s["brightness_mean"],
                s["input_psi"],
                s["input_drift"],
                s["prediction_psi"],
                s["prediction_drift"],
            ]
            for d, s in drift["devices"].items()
        ],
        ["Device", "Captured", "Mean brightness", "Input PSI", "Input", "Prediction PSI", "Predictions"],
        title="Drift against the packaging-time reference",
    )
    report.add_metrics(
        {f"{d} input PSI": s["input_psi"] for d, s in drift["devices"].items()},
        title="Drift (input PSI per device; > 0.25 is drift)",
    )
    for name, figure in figures(stored["summary"], stored["reference"]).items():
        report.add_figure(name, figure, caption=name.replace("_", " "))


def _prepare_job(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """The prepare job's DescribeProcessingJob answer; None if it never started (nothing billed)."""
    from botocore.exceptions import ClientError

    try:
        return sagemaker.describe_processing_job(ProcessingJobName=name)
    except ClientError as error:  # never started: nothing billed, nothing to link
        log.info("no prepare job to cost (%s)", error)
        return None


def _add_prepare_cost(report: Any, job: dict[str, Any] | None, region: str, name: str) -> None:
    """The prepare job is the run's one instance-billed job: its seconds × its instances' price. Found by its
    name (orchard.naming), so a job that failed is costed too."""
    if job is None:
        return
    report.add_console_link("sagemaker_processing_job", name, region)
    if job.get("ProcessingStartTime") and job.get("ProcessingEndTime"):
        seconds = (job["ProcessingEndTime"] - job["ProcessingStartTime"]).total_seconds()
        cluster = job["ProcessingResources"]["ClusterConfig"]
        report.add_cost(
            [
                {
                    "job": name,
                    "service": "sagemaker",
                    "instance_type": cluster["InstanceType"],
                    "instance_count": cluster["InstanceCount"],
                    "billable_seconds": max(seconds, 1.0),
                }
            ],
            region,
        )


def _add_links_and_cost(
    report: Any, region: str, compiled: dict | None, fleet: dict | None, deployment: dict | None
) -> None:
    # Per-request list prices (orchard.pricing, with their price pages). Neo compiles for free.
    job_execution, secret_month = unit_price("iot_job_execution"), unit_price("secretsmanager_secret_month")
    rows, total = [], 0.0
    if compiled:
        report.add_console_link("sagemaker_compilation_job", compiled["job_name"], region)
        rows.append(["Neo compilation", compiled["job_name"], "no charge", "0.0000"])
    if deployment:
        report.add_console_link("iot_job", deployment["job_id"], region)
        usd = job_execution * len(deployment["outcomes"])
        total += usd
        rows.append(
            [
                "IoT job executions",
                f"{len(deployment['outcomes'])} × ${job_execution}",
                "",
                f"{usd:.4f}",
            ]
        )
    if fleet:
        for device in fleet["devices"]:
            report.add_console_link("iot_thing", device["thing_name"], region)
        secrets = [d for d in fleet["devices"] if d.get("secret_name")]  # none in someone else's fleet
        usd = secret_month * len(secrets) / HOURS_PER_MONTH
        total += usd
        note = f"prorated: one hour each (the fleet stays: ${secret_month:.2f} a secret-month until deleted)"
        rows.append(["Secrets Manager", f"{len(secrets)} secrets", note, f"{usd:.4f}"])
        usd = unit_price("kms_asymmetric_request") * (1 + len(fleet["devices"]))
        total += usd
        rows.append(["KMS", "1 sign + 1 verify per device", "", f"{usd:.6f}"])
    rows.append(["**Total**", "", "", f"**{total:.4f}**"])
    report.cost_usd = round((report.cost_usd or 0.0) + total, 6)
    report.add_table(rows, ["Item", "What", "Note", "USD"], title="Estimated cost: per-request services")
    report.add_text(
        f"Per-request list prices ({PER_UNIT_REGION}) as of {PRICES_AS_OF}; the prepare job above is the "
        "only instance-billed job. The signing key ($1/month) and S3 storage are not counted per run."
    )
