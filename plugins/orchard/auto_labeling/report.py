"""The run report: what labeled the frames, the counts, what is missing from the manifest, sample frames with
their boxes, and the cost of the endpoint and of Ground Truth (orchard.reports publishes it to S3)."""

from __future__ import annotations

import json
from typing import Any

from orchard import aws
from orchard.auto_labeling.predictions import PRELABEL_ATTRIBUTE
from orchard.auto_labeling.s3_objects import read_many
from orchard.pricing import PER_UNIT_REGION, unit_price
from orchard.settings import load_settings


def publish_report(
    plan: dict[str, Any],
    collected: dict[str, Any],
    manifest: dict[str, Any],
    verified: dict[str, Any] | None,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    """The report in S3 (the settings' reports bucket, else the artifacts bucket). Returns what the run
    announces (orchard.run_results.announce): {"report_uri", "metrics", "cost_usd"}, as report.json has them,
    so the announcement needs no read-back of report.json (a second settings read and AWS session)."""
    from orchard.reports import Report

    settings = load_settings()
    s3 = aws.client("s3", conn_id=settings.aws_conn_id)  # the settings read once: no second read for it
    report = Report("Auto-labeling", dag_id, run_id)
    _add_results(report, plan, collected, manifest, verified)
    if collected["failed"]:
        _add_missing(report, plan, collected)
    report.add_figure(
        "samples",
        _sample_grid(s3, manifest["manifest_uri"], verified),
        "Sample frames: predicted boxes (red), verified boxes (green, dashed)",
    )
    _add_costs(report, plan, collected, verified)
    bucket = settings.reports_bucket or settings.artifacts_bucket
    uri = report.publish(s3, bucket, settings.reports_prefix)
    published = report.to_dict()  # report.json's content
    return {"report_uri": uri, "metrics": published["metrics"], "cost_usd": published["cost_usd"]}


def _add_results(
    report: Any,
    plan: dict[str, Any],
    collected: dict[str, Any],
    manifest: dict[str, Any],
    verified: dict[str, Any] | None,
) -> None:
    """Which model labeled the frames, the counts, and who (if anyone) verified the labels."""
    models = ", ".join(manifest["models"]) or plan["model_id"]
    report.add_text(
        f"Labels produced by **{models}** (model id `{plan['model_id']}`) on endpoint "
        f"`{plan['endpoint_name']}` ({'deployed by this run' if plan['owned'] else 'existing, left running'})."
    )
    metrics = {
        "frames": plan["frames"],
        "answered": collected["answered"],
        "failed": collected["failed"],
        "manifest lines": manifest["lines"],
        f"pre-label boxes (score ≥ {plan['threshold']:.2f})": manifest["boxes"],
    }
    if verified:
        metrics.update(
            {k: verified[k] for k in ("verified", "adjusted", "rejected", "unlabeled", "human_annotated")}
        )
    report.add_metrics(metrics)
    if verified and verified["auto_accept_policy"]:
        report.add_text(f"> **No human verified these labels.** {verified['auto_accept_policy']}")
    elif not verified:
        report.add_text(
            "No labeling job ran (stop_at_manifest): the manifest is ready for labeling elsewhere: "
            f"`{manifest['manifest_uri']}`."
        )


def _add_missing(report: Any, plan: dict[str, Any], collected: dict[str, Any]) -> None:
    """The frames missing from the manifest, by URI (the first MISSING_SHOWN), and why."""
    unanswered, missing = collected.get("unanswered", 0), collected.get("missing", [])
    listed = [f"- `{uri}`" for uri in missing]
    if collected["failed"] > len(missing):
        listed.append(f"- … and {collected['failed'] - len(missing)} more")
    report.add_text(
        f"**Missing from the manifest: {collected['failed']} of {plan['frames']} frames** "
        f"({unanswered} without an answer from the endpoint in time, "
        f"{collected['failed'] - unanswered} refused or failed by the model); each one's reason is in "
        f"`{collected['failures_uri']}`. Clearing the `invoke` tasks invokes only these again.\n"
        + "\n".join(listed)
    )


def _add_costs(
    report: Any, plan: dict[str, Any], collected: dict[str, Any], verified: dict[str, Any] | None
) -> None:
    """The endpoint's cost (only one this run deployed) and Ground Truth's, with their console links."""
    if plan["owned"]:
        report.add_console_link("sagemaker_endpoint", plan["endpoint_name"], plan["region"])
        report.add_cost(
            [
                {
                    "job": plan["endpoint_name"],
                    "service": "sagemaker",
                    "instance_type": plan["instance_type"],
                    "billable_seconds": collected["endpoint_seconds"],
                    "region": plan["region"],
                }
            ]
        )
        report.add_text(
            "Endpoint cost: one instance for the endpoint's lifetime until the predictions were "
            "collected (autoscaling may have run more instances, or none while idle)."
        )
    if verified:
        report.add_console_link("sagemaker_labeling_job", verified["job_name"], plan["region"])
        labeled = verified["verified"] + verified["adjusted"] + verified["rejected"]
        per_object = unit_price("groundtruth_object")  # orchard.pricing, with its price page
        # In the run's total too (the Asset event, the note and the Reports page read cost_usd), as edge's
        # per-request prices are.
        report.cost_usd = round((report.cost_usd or 0.0) + labeled * per_object, 6)
        report.add_text(
            f"Ground Truth: {labeled} objects × ${per_object:.2f} ≈ "
            f"${labeled * per_object:,.2f} ({PER_UNIT_REGION} list price, first 50,000 objects a month; "
            "workforce charges extra for vendor workforces)."
        )


def _sample_grid(s3: Any, manifest_uri: str, verified: dict[str, Any] | None, count: int = 6) -> Any:
    import io

    from matplotlib.patches import Rectangle
    from PIL import Image

    from orchard.reports import new_figure

    uris = [manifest_uri] + ([verified["verified_uri"]] if verified else [])
    texts = [body.decode("utf-8") for body in read_many(s3, uris, len(uris))]
    lines = [json.loads(line) for line in texts[0].splitlines() if line.strip()]
    lines = sorted(lines, key=lambda line: -len(line[PRELABEL_ATTRIBUTE]["annotations"]))[:count]
    verified_boxes: dict[str, list[dict]] = {}
    for text in texts[1:]:  # the verified dataset, when a labeling job ran
        for record_line in text.splitlines():
            record = json.loads(record_line)
            verified_boxes[record["source-ref"]] = record["annotations"]
    frames = read_many(s3, [line["source-ref"] for line in lines], count)  # the samples' images at once
    columns = 3
    rows = max(1, -(-len(lines) // columns))
    figure = new_figure(figsize=(4 * columns, 2.6 * rows))
    for index, line in enumerate(lines):
        axes = figure.add_subplot(rows, columns, index + 1)
        with Image.open(io.BytesIO(frames[index])) as image:
            axes.imshow(image.convert("RGB"))
        for box in line[PRELABEL_ATTRIBUTE]["annotations"]:
            axes.add_patch(
                Rectangle(
                    (box["left"], box["top"]), box["width"], box["height"], fill=False, color="red", lw=1.5
                )
            )
        for box in verified_boxes.get(line["source-ref"], []):
            axes.add_patch(
                Rectangle(
                    (box["left"] + 2, box["top"] + 2),
                    box["width"] - 4,
                    box["height"] - 4,
                    fill=False,
                    color="lime",
                    lw=1.2,
                    ls="--",
                )
            )
        axes.set_title(line["source-ref"].rsplit("/", 1)[-1], fontsize=8)
        axes.axis("off")
    figure.tight_layout()
    return figure
