"""The evaluation: both linear probes' test metrics side by side in `evaluation.json`, a summary for XCom.

Runs in tasks only; S3 access goes through the S3Hook the task passes in.
"""

from __future__ import annotations

import json

from orchard.aerial_pretraining.plan import model_artifacts, run_prefix


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


def evaluate(s3, probes: list[dict], run_id: str, bucket: str) -> dict:
    """Each probe's metrics.json (from its model.tar.gz) by backbone → `<run prefix>evaluation.json` in
    `bucket`; returns its URI and the macro / micro AP of the new backbone and the baseline."""
    results = {}
    for probe in probes:
        metrics = read_from_model_tar(s3, model_artifacts(probe), "metrics.json")
        results[metrics["backbone"]] = {**metrics, "job": probe["Training"]["TrainingJobName"]}
    key = f"{run_prefix(run_id)}evaluation.json"
    s3.load_string(json.dumps(results, indent=2), key, bucket, replace=True)
    return {
        "evaluation_uri": f"s3://{bucket}/{key}",
        "new_mAP": results["aerial-dino"]["macro_mAP"],
        "baseline_mAP": results["baseline"]["macro_mAP"],
        "new_micro_AP": results["aerial-dino"]["micro_AP"],
        "baseline_micro_AP": results["baseline"]["micro_AP"],
    }


def read_evaluation(s3, evaluation: dict) -> dict:
    """The full evaluation.json (per-class AP of both backbones) behind evaluate's summary."""
    bucket, key = s3.parse_s3_url(evaluation["evaluation_uri"])
    return json.loads(s3.read_key(key, bucket))
