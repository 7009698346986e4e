"""The evaluation: both linear probes' test metrics side by side in `evaluation.json`, a summary for XCom.

Runs in tasks only; S3 access goes through the boto3 S3 client the task passes in (orchard.aws).
"""

from __future__ import annotations

import json

from orchard.aerial_pretraining.plan import model_artifacts, run_prefix


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read_from_model_tar(s3, uri: str, member: str) -> dict:
    """One JSON member of a SageMaker model.tar.gz / output.tar.gz in S3 (`s3`: a boto3 S3 client)."""
    import io
    import tarfile

    bucket, key = split_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        handle = archive.extractfile(member)
        if handle is None:
            raise FileNotFoundError(f"{member} missing from {uri}")
        return json.load(handle)


def read_probe_metrics(s3, probes: list[dict]) -> list[dict]:
    """Each probe's metrics.json, in the probes' order; the archives are fetched at once (one thread each:
    the task waits for the slowest GET, not for their sum)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(probes) or 1) as pool:
        return list(
            pool.map(lambda probe: read_from_model_tar(s3, model_artifacts(probe), "metrics.json"), probes)
        )


def evaluate(s3, probes: list[dict], run_id: str, bucket: str) -> dict:
    """Each probe's metrics.json (from its model.tar.gz) by backbone → `<run prefix>evaluation.json` in
    `bucket`; returns its URI and the macro / micro AP of the new backbone and the baseline."""
    results = {}
    for probe, metrics in zip(probes, read_probe_metrics(s3, probes), strict=True):
        results[metrics["backbone"]] = {**metrics, "job": probe["Training"]["TrainingJobName"]}
    key = f"{run_prefix(run_id)}evaluation.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(results, indent=2).encode())
    return {
        "evaluation_uri": f"s3://{bucket}/{key}",
        "new_mAP": results["aerial-dino"]["macro_mAP"],
        "baseline_mAP": results["baseline"]["macro_mAP"],
        "new_micro_AP": results["aerial-dino"]["micro_AP"],
        "baseline_micro_AP": results["baseline"]["micro_AP"],
    }


def read_evaluation(s3, evaluation: dict) -> dict:
    """The full evaluation.json (per-class AP of both backbones) behind evaluate's summary."""
    bucket, key = split_s3_uri(evaluation["evaluation_uri"])
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
