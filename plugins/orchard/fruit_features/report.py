"""The `fruit_features` run report: model, output checks, explained variance, PCA scatter, scaling, cost."""

from __future__ import annotations

from typing import Any

from orchard.fruit_features.outputs import cluster_seconds, read_json, speedups
from orchard.fruit_features.plan import EXPORT_INSTANCE_TYPE
from orchard.reports import Report, new_figure

SANDBOX_NOTE = (
    "In the local sandbox every cluster runs Spark in local[2] on the same machine whatever its core node "
    "count, so these numbers measure the sandbox, not EMR's horizontal scaling."
)


def variance_figure(metrics: dict[str, Any], target: float | None):
    figure = new_figure(figsize=(6, 4))
    axes = figure.add_subplot()
    curve = metrics["explained_variance_curve"]
    axes.plot(range(1, len(curve) + 1), curve, marker=".")
    axes.axvline(metrics["pca_k"], color="grey", linestyle="--", label=f"k = {metrics['pca_k']}")
    if target is not None:
        axes.axhline(target, color="red", linestyle=":", label=f"target {target:g}")
    axes.set(xlabel="principal components", ylabel="cumulative explained variance", ylim=(0, 1.02))
    axes.legend()
    return figure


def scatter_figure(metrics: dict[str, Any]):
    figure = new_figure(figsize=(6, 5))
    axes = figure.add_subplot()
    by_label: dict[str, list[tuple[float, float]]] = {}
    for label, x, y in metrics["scatter"]:
        by_label.setdefault(label, []).append((x, y))
    for label, points in sorted(by_label.items()):
        xs, ys = zip(*points)
        axes.scatter(xs, ys, s=10, label=label, alpha=0.7)
    axes.set(xlabel="PC 1", ylabel="PC 2", title=f"{len(metrics['scatter'])} images, coloured by fruit")
    axes.legend(fontsize="small", markerscale=2)
    return figure


def speedup_figure(rows: list[dict[str, Any]]):
    figure = new_figure(figsize=(6, 4))
    axes = figure.add_subplot()
    nodes = [row["core_nodes"] for row in rows]
    axes.plot(nodes, [row["speedup"] for row in rows], marker="o", label="measured (step wall time)")
    axes.plot(nodes, [n / nodes[0] for n in nodes], linestyle="--", color="grey", label="ideal (linear)")
    axes.set(xlabel="core nodes", ylabel=f"speed-up over {nodes[0]} core node(s)")
    axes.legend()
    return figure


def publish_run_report(
    plan: dict[str, Any],
    checked: dict[str, Any],
    records: Any,
    model: dict[str, Any],
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    """The DAG's `publish_report`: the run report built and published to the reports bucket.

    Returns the run's summary as `orchard.run_results.announce` takes it: `report_uri`, `metrics`,
    `cost_usd` and `attention` (the corrupt images left out)."""
    from orchard import aws, naming
    from orchard.fruit_features.outputs import scaling_records
    from orchard.settings import load_settings

    settings = load_settings()  # once; and the three services' clients on one session (orchard.aws)
    emr, s3, sagemaker = aws.clients("emr", "s3", "sagemaker", conn_id=settings.aws_conn_id)
    export_job = (  # this run's export job, when the model was not in S3 yet
        None
        if model["exists"]
        else naming.resource_name("sagemaker_processing_job", dag_id, run_id, "export")
    )
    report = build_report(
        emr=emr,
        sagemaker=sagemaker,
        s3=s3,
        plan=plan,
        checked=checked,
        records=scaling_records(records),  # one core node count: a dict, not a list
        export_job=export_job,
        region=plan["region"],
        sandbox="amazonaws.com" not in emr.meta.endpoint_url,
        dag_id=dag_id,
        run_id=run_id,
    )
    corrupt = checked["corrupt_count"]
    return {
        "report_uri": report.publish(s3, settings.reports_bucket, settings.reports_prefix),
        "metrics": report.metrics,
        "cost_usd": report.cost_usd,
        "attention": [f"{corrupt} corrupt image(s) left out"] if corrupt else [],
    }


def features_extra(checked: dict[str, Any], report_uri: str) -> dict[str, Any]:
    """The `fruit_features.features` Asset event's extra: where the features are and what they hold."""
    return {
        "features": f"{checked['output']}features/",
        "rows": checked["rows"],
        "model": checked["model"],
        "pca_k": checked["pca_k"],
        "report": report_uri,
    }


def build_report(
    *,
    emr: Any,
    sagemaker: Any,
    s3: Any,
    plan: dict[str, Any],
    checked: dict[str, Any],
    records: list[dict[str, Any]],
    export_job: str | None,
    region: str,
    sandbox: bool,
    dag_id: str,
    run_id: str,
) -> Report:
    params = plan["params"]
    metrics = read_json(s3, f"{checked['output']}metrics.json")
    rows = speedups(records)
    report = Report("Fruit features: CNN features → PCA on EMR", dag_id, run_id)
    report.add_text(
        f"**Model:** `{checked['model']}` ({checked['weights']}), 1280-d features, exported to ONNX and run "
        f"with ONNX Runtime in Spark `{metrics['spark_version']}` (`predict_batch_udf`).\n\n"
        f"**Images:** `{params['images_prefix']}` → **features:** `{checked['output']}features/` "
        f"(parquet: path, label, features, pca) and `{checked['output']}metrics.json`."
    )
    report.add_metrics(
        {
            "images found": checked["images_found"],
            "rows written (readable images)": checked["rows"],
            "corrupt images skipped": checked["corrupt_count"],
            "PCA components (k)": checked["pca_k"],
            "explained variance": checked["explained_variance"],
            "PCA target": params["pca_variance"] if params["pca_k"] is None else f"k = {params['pca_k']}",
            "fruits": ", ".join(f"{k} ({v})" for k, v in metrics["labels"].items()),
        },
        title="Output",
    )
    if checked["corrupt"]:
        report.add_text(
            "## Corrupt images (skipped)\n\n" + "\n".join(f"- `{line}`" for line in checked["corrupt"])
        )
    report.add_figure(
        "explained_variance",
        variance_figure(metrics, params["pca_variance"]),
        "Cumulative explained variance of the principal components",
    )
    report.add_figure(
        "pca_scatter", scatter_figure(metrics), "First two principal components, coloured by fruit"
    )
    report.add_table(
        [
            [
                r["core_nodes"],
                r["step_wall_s"],
                r["images"],
                r["images_per_s"],
                r["feature_stage_images_per_s"],
                r["speedup"],
                r["efficiency"],
                r["spark_parallelism"],
            ]
            for r in rows
        ],
        [
            "Core nodes",
            "Step wall s",
            "Images",
            "Images/s (step)",
            "Images/s (feature stage)",
            "Speed-up",
            "Efficiency",
            "Spark parallelism",
        ],
        title="Horizontal scaling",
    )
    report.add_figure("speedup", speedup_figure(rows), "Speed-up of the step with the core node count")
    if sandbox:
        report.add_text(f"*{SANDBOX_NOTE}*")
    costs = []
    for record in rows:
        report.add_console_link(
            "emr_cluster",
            record["cluster_id"],
            region,
            f"EMR cluster {record['cluster_id']} ({record['core_nodes']} core nodes)",
        )
        seconds = cluster_seconds(emr, record["cluster_id"])
        costs.append(
            {
                "job": f"{record['cluster_id']} primary",
                "service": "emr",
                "instance_type": params["master_instance_type"],
                "billable_seconds": seconds,
            }
        )
        costs.append(
            {
                "job": f"{record['cluster_id']} core",
                "service": "emr",
                "instance_count": record["core_nodes"],
                "instance_type": params["core_instance_type"],
                "billable_seconds": seconds,
            }
        )
    if export_job:
        job = sagemaker.describe_processing_job(ProcessingJobName=export_job)
        seconds = (job["ProcessingEndTime"] - job["ProcessingStartTime"]).total_seconds()
        report.add_console_link("sagemaker_processing_job", export_job, region, f"ONNX export {export_job}")
        costs.append(
            {
                "job": export_job,
                "service": "sagemaker",
                "instance_type": EXPORT_INSTANCE_TYPE,
                "billable_seconds": seconds,
            }
        )
    report.add_cost(costs, region=region)
    return report
