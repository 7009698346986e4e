"""The monitor: what the devices captured since the run's IoT job started, against the packaging-time
reference (orchard.edge_deployment.drift measures it) → drift.json, a compact summary for XCom."""

from __future__ import annotations

import json
import logging
from typing import Any

from orchard import naming
from orchard.settings import load_settings

log = logging.getLogger(__name__)


def monitor_drift(
    package: dict[str, Any],
    deployment: dict[str, Any],
    params: dict[str, Any],
    capture_prefix: str,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from orchard import aws
    from orchard.edge_deployment.drift import parse_records, summarise

    settings = load_settings()
    s3 = S3Hook(aws_conn_id=settings.aws_conn_id)
    if not package.get("reference_uri"):
        return {"devices": {}, "note": "no reference: run with calibration_uri to monitor drift"}
    started = aws.client("iot").describe_job(jobId=deployment["job_id"])["job"]["createdAt"]
    chunks = []
    for device in deployment["succeeded"]:
        prefix = f"{capture_prefix}/{params['fleet_name']}/{device}/{package['model_name']}/"
        for item in (
            s3.get_conn()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=settings.data_bucket, Prefix=prefix)
        ):
            for obj in item.get("Contents", []):
                if obj["LastModified"] >= started:
                    chunks.append(s3.read_key(obj["Key"], settings.data_bucket).encode())
    records = [r for r in parse_records(chunks) if r["model"] == package["model_name"]]
    bucket, _, key = package["reference_uri"][5:].partition("/")
    reference = json.loads(s3.read_key(key, bucket))
    summary = summarise(records, reference)
    out_key = naming.resource_name("s3_prefix", dag_id, run_id, "monitor") + "drift.json"
    s3.load_string(
        json.dumps({"summary": summary, "reference": reference}),
        out_key,
        settings.artifacts_bucket,
        replace=True,
    )
    for device, stats in summary["devices"].items():
        log.info(
            "device %s: %d records, input PSI %.3f (%s), prediction PSI %.3f (%s)",
            device,
            stats["records"],
            stats["input_psi"],
            stats["input_drift"],
            stats["prediction_psi"],
            stats["prediction_drift"],
        )
    compact = {
        d: {
            k: s[k]
            for k in (
                "records",
                "input_psi",
                "prediction_psi",
                "input_drift",
                "prediction_drift",
                "brightness_mean",
            )
        }
        for d, s in summary["devices"].items()
    }
    return {
        "drift_uri": f"s3://{settings.artifacts_bucket}/{out_key}",
        "records": len(records),
        "devices": compact,
    }
