"""The endpoint's answers → the pre-label manifest: the shards' records collected (answers and failures, in
S3), then one Ground Truth bounding-box line per answered frame, its label categories and worker template."""

from __future__ import annotations

import json
from typing import Any

from orchard import aws
from orchard.auto_labeling import manifest
from orchard.auto_labeling.endpoint import endpoint_seconds
from orchard.auto_labeling.s3_objects import read_bytes, read_many, read_text, write_many

PRELABEL_ATTRIBUTE = "prelabel"  # the manifest's label attribute holding the model's boxes
MISSING_SHOWN = 20  # failed frames named in the report (all of them are in failures.json)
# GETs in flight while the manifest reads the answers: one by one, 300 answers took 6 s of the demo's
# critical path under load (benchmarks/auto_labeling_task_time.py).
READ_CONCURRENCY = 16


def collect_predictions(summaries: list[dict[str, Any]], plan: dict[str, Any]) -> dict[str, Any]:
    """Totals over the shards, the failures with their reasons (in S3), and the endpoint's lifetime so far.
    A frame that never got an answer is a failure like the others ("unanswered": true): the manifest is
    built for the answered frames and the report lists what is missing. S3 and SageMaker on one session;
    the shards' records read at once, then the two files written while the endpoint is described."""
    from concurrent.futures import ThreadPoolExecutor

    clients = aws.session_clients(plan["conn_id"], max_pool_connections=READ_CONCURRENCY)
    s3 = clients.client("s3")  # both built in this thread: a boto3 session is not thread-safe
    sagemaker = clients.client("sagemaker") if plan["owned"] else None  # the endpoint's lifetime
    records = read_many(s3, [summary["record_uri"] for summary in summaries], READ_CONCURRENCY)
    answered, failures = [], []
    for record in records:
        for result in json.loads(record.decode("utf-8"))["results"]:
            if result["status"] == "answered":
                answered.append({"input": result["input"], "output": result["output"]})
            else:
                failures.append(
                    {
                        "input": result["input"],
                        "reason": result.get("reason", "no answer"),
                        "unanswered": bool(result.get("unanswered")),
                    }
                )
    predictions_uri = f"{plan['base_uri']}invocations/answered.json"
    failures_uri = f"{plan['base_uri']}invocations/failures.json"
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="collect") as pool:
        lifetime = pool.submit(endpoint_seconds, sagemaker, plan)
        write_many(s3, {predictions_uri: json.dumps(answered), failures_uri: json.dumps(failures)}, 2)
        seconds = lifetime.result()
    for failure in failures[:20]:
        print(f"failed: {failure['input']}: {failure['reason'][:300]}")
    return {
        "answered": len(answered),
        "failed": len(failures),
        "unanswered": sum(1 for failure in failures if failure["unanswered"]),
        "missing": [failure["input"] for failure in failures[:MISSING_SHOWN]],
        "predictions_uri": predictions_uri,
        "failures_uri": failures_uri,
        "endpoint_seconds": seconds,
    }


def build_manifest(plan: dict[str, Any], collected: dict[str, Any]) -> dict[str, Any]:
    """The manifest of the answered frames (boxes scoring at least the threshold), the label category file
    and the worker template, in S3 under `manifest/`. No answered frame: nothing to label, the task fails."""
    s3 = aws.client("s3", conn_id=plan["conn_id"], max_pool_connections=READ_CONCURRENCY)
    lines, models, boxes = [], set(), 0
    answered = json.loads(read_text(s3, collected["predictions_uri"]))
    answers = read_many(s3, [item["output"] for item in answered], READ_CONCURRENCY)
    for item, body in zip(answered, answers, strict=True):
        response = json.loads(body.decode("utf-8"))
        models.add(response.get("model", plan["model_id"]))
        size = None if response.get("image_size") else _image_size(s3, item["input"])
        line = manifest.manifest_line(
            item["input"],
            response,
            label_attribute=PRELABEL_ATTRIBUTE,
            categories=plan["categories"],
            threshold=plan["threshold"],
            job_name=plan["labeling_job_name"],
            image_size=size,
        )
        boxes += len(line[PRELABEL_ATTRIBUTE]["annotations"])
        lines.append(line)
    if not lines:
        raise RuntimeError(
            f"no frame was answered ({collected['failed']} failed: see {collected['failures_uri']}): "
            "nothing to label"
        )
    uris = {
        name: f"{plan['base_uri']}manifest/{file}"
        for name, file in (
            ("manifest_uri", "prelabels.manifest"),
            ("categories_uri", "label-categories.json"),
            ("template_uri", "worker-template.liquid"),
        )
    }
    # The image label file is `document-version` + `labels` (API_CreateLabelingJob, LabelCategoryConfigS3Uri):
    # `auditLabelAttributeName` is for 3D point cloud and video frame jobs; for images, the worker template
    # names the attribute whose labels are checked.
    categories = manifest.label_categories(plan["categories"], plan["mode"])
    bodies = {
        uris["manifest_uri"]: manifest.to_jsonl(lines),
        uris["categories_uri"]: json.dumps(categories, indent=1),
        uris["template_uri"]: manifest.worker_template(plan["mode"], PRELABEL_ATTRIBUTE),
    }
    write_many(s3, bodies, READ_CONCURRENCY)
    return {**uris, "lines": len(lines), "boxes": boxes, "models": sorted(models)}


def _image_size(s3: Any, uri: str) -> dict[str, int]:
    """For responses without image_size (JumpStart's): read the frame's header."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(read_bytes(s3, uri))) as image:
        return {"width": image.width, "height": image.height, "depth": len(image.getbands())}
