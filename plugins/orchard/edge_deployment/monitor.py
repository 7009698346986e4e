"""The monitor: what the devices captured since the run's IoT job started, against the packaging-time
reference (orchard.edge_deployment.drift measures it) → drift.json, a compact summary for XCom."""

from __future__ import annotations

import json
import logging
from typing import Any

from orchard import naming
from orchard.settings import load_settings

log = logging.getLogger(__name__)


READ_THREADS = 8  # capture objects read at once (one S3 client: boto3 clients are thread-safe)


def monitor_drift(
    package: dict[str, Any],
    deployment: dict[str, Any],
    params: dict[str, Any],
    capture_prefix: str,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    from orchard import aws
    from orchard.edge_deployment.drift import parse_records, summarise

    settings = load_settings()
    if not package.get("reference_uri"):
        return {"devices": {}, "note": "no reference: run with calibration_uri to monitor drift"}
    clients = aws.session_clients(settings.aws_conn_id)  # S3 and IoT on one session
    s3 = clients.client("s3")
    started = clients.client("iot").describe_job(jobId=deployment["job_id"])["job"]["createdAt"]
    prefixes = [
        f"{capture_prefix}/{params['fleet_name']}/{device}/{package['model_name']}/"
        for device in deployment["succeeded"]
    ]
    chunks = read_objects(
        s3, settings.data_bucket, captured_since(s3, settings.data_bucket, prefixes, started)
    )
    records = [r for r in parse_records(chunks) if r["model"] == package["model_name"]]
    bucket, _, key = package["reference_uri"][5:].partition("/")
    reference = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    summary = summarise(records, reference)
    out_key = naming.resource_name("s3_prefix", dag_id, run_id, "monitor") + "drift.json"
    s3.put_object(
        Bucket=settings.artifacts_bucket,
        Key=out_key,
        Body=json.dumps({"summary": summary, "reference": reference}).encode(),
        ContentType="application/json",
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


def captured_since(s3: Any, bucket: str, prefixes: list[str], started: Any) -> list[str]:
    """The keys under `prefixes` written at or after `started` (the IoT job's creation), in listing order."""
    paginator = s3.get_paginator("list_objects_v2")
    return [
        obj["Key"]
        for prefix in prefixes
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["LastModified"] >= started
    ]


def read_objects(s3: Any, bucket: str, keys: list[str]) -> list[bytes]:
    """The objects' bodies in the order of `keys`, READ_THREADS GetObject calls at a time: each is one
    round trip, which one by one made most of the monitor's time."""
    from concurrent.futures import ThreadPoolExecutor

    def read(key: str) -> bytes:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return list(pool.map(read, keys))
