"""The run's plan, made by the first task once the input is valid: names, URIs, counts (its small JSON state in
XCom); the frame lists go to S3 as shards that `invoke` is mapped over.

Every check here runs before anything billable starts; bad input raises orchard.errors.InputError.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchard import aws, naming
from orchard.auto_labeling.endpoint import describe_existing
from orchard.auto_labeling.frames import CHECK_CONCURRENCY, list_frames
from orchard.auto_labeling.labeling import check_ground_truth
from orchard.auto_labeling.s3_objects import exists, folder, write_many
from orchard.errors import InputError
from orchard.settings import load_settings

# What each kind of model is sent and asked for (InvokeEndpointAsync ContentType / Accept). An empty
# content type: each frame's own, by suffix (the invoke operator applies it).
# orchard: include/auto_labeling/inference.py takes image/png, image/jpeg (input_fn) and answers JSON.
# jumpstart: SageMaker JumpStart's object detectors take `application/x-image` and answer the class
# names with the boxes (`labels`, which manifest.detections_from_response needs) only for
# `application/json;verbose` (the JumpStart notebooks of aws/amazon-sagemaker-examples invoke with
# ContentType="application/x-image", Accept="application/json;verbose").
MODEL_ADAPTERS = {
    "orchard": {"content_type": "", "accept": "application/json"},
    "jumpstart": {"content_type": "application/x-image", "accept": "application/json;verbose"},
}


def inference_image(region: str) -> str:
    """The AWS PyTorch CPU inference container: it runs model.tar.gz's code/inference.py (inference toolkit),
    installing code/requirements.txt first, so the detector needs no image of its own."""
    return f"763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"


def plan_run(params: dict[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    """The run's plan, once every check passed. The settings are read once and S3 and SageMaker share one
    session (each session: credentials, the connection's AssumeRole; each client: the provider's user
    agent, a walk of the call stack)."""
    settings = load_settings()
    # list_frames' CHECK_CONCURRENCY reads and the two other checks' S3 calls share the S3 client's pool
    clients = aws.session_clients(settings.aws_conn_id, max_pool_connections=CHECK_CONCURRENCY + 2)
    s3 = clients.client("s3")  # both built in this thread: a boto3 session is not thread-safe
    sagemaker = clients.client("sagemaker")
    existing = (params["existing_endpoint_name"] or "").strip()
    base = f"s3://{settings.artifacts_bucket}/{naming.resource_name('s3_prefix', dag_id, run_id)}"
    frames_prefix = folder(params["frames_prefix"])
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="validate") as pool:
        if existing:
            endpoint = pool.submit(_existing_endpoint, sagemaker, existing)
        else:
            endpoint = pool.submit(_endpoint_to_deploy, s3, params, dag_id, run_id, base, settings.region)
        frames, categories, adapter = _check_inputs(
            pool, s3, sagemaker, params, settings.region, frames_prefix
        )
        endpoint = endpoint.result()  # last: failures raise in one order (frames, form, Ground Truth, model)
    plan = {
        "dag_id": dag_id,
        "region": settings.region,
        "conn_id": settings.aws_conn_id,
        "owned": not existing,
        "model_id": params["model_id"],
        "instance_type": params["instance_type"],
        "max_instances": params["max_instances"],
        "frames": len(frames),
        "frames_prefix": frames_prefix,
        "categories": categories,
        "threshold": float(params["score_threshold"]),
        "mode": params["labeling_mode"],
        "base_uri": base,
        "role_arn": settings.sagemaker_execution_role_arn,
        "labeling_output_uri": f"{base}labeling/",
        "verified_attribute": f"verified-{params['labeling_mode']}",
        "labeling_job_name": naming.resource_name("sagemaker_labeling_job", dag_id, run_id),
        **MODEL_ADAPTERS[adapter],
        **endpoint,
    }
    plan["shards"] = _write_shards(s3, frames, params["frames_per_shard"], base)
    return plan


def _check_inputs(
    pool: Any, s3: Any, sagemaker: Any, params: dict[str, Any], region: str, frames_prefix: str
) -> tuple[list[str], list[str], str]:
    """The frames and Ground Truth's prerequisites checked at once (they are independent reads), the
    form's own checks meanwhile; a failing check raises in this order whichever answered first.
    Returns the frames, the label categories and the model format."""
    frames = pool.submit(list_frames, s3, frames_prefix, params["max_frames"])
    ground_truth = None
    if not params.get("stop_at_manifest"):
        ground_truth = pool.submit(
            check_ground_truth, s3, sagemaker, region, params, frames_uri=frames_prefix
        )
    frames = frames.result()
    categories = [c.strip() for c in params["label_categories"] if c.strip()]
    if len(set(categories)) != len(categories):
        raise InputError(f"label_categories has duplicates: {categories}; give each category once")
    adapter = params.get("model_format", "orchard")
    if adapter not in MODEL_ADAPTERS:
        raise InputError(f"model_format {adapter!r} is not one of {', '.join(MODEL_ADAPTERS)}")
    if ground_truth:
        ground_truth.result()
    return frames, categories, adapter


def _existing_endpoint(sagemaker: Any, name: str) -> dict[str, Any]:
    return {
        "endpoint_name": name,
        "endpoint_config_name": "",
        "model_name": "",
        **describe_existing(sagemaker, name),
    }


def _endpoint_to_deploy(
    s3: Any, params: dict[str, Any], dag_id: str, run_id: str, base: str, region: str
) -> dict[str, Any]:
    """The names and locations of the model, config and endpoint this run creates (and removes)."""
    model_data = (params["model_data_uri"] or "").strip()
    if not model_data:
        raise InputError("give model_data_uri (an s3://…/model.tar.gz) or existing_endpoint_name")
    if not exists(s3, model_data):
        raise InputError(
            f"model_data_uri {model_data} does not exist: upload the model.tar.gz or fix the URI"
        )
    return {
        "endpoint_name": naming.resource_name("sagemaker_endpoint", dag_id, run_id),
        "endpoint_config_name": naming.resource_name("sagemaker_endpoint_config", dag_id, run_id),
        "model_name": naming.resource_name("sagemaker_model", dag_id, run_id),
        "model_data_uri": model_data,
        "image_uri": (params["image_uri"] or "").strip() or inference_image(region),
        "output_path": f"{base}async/output/",
        "failure_path": f"{base}async/failure/",
        "max_concurrent_per_instance": params["max_concurrent_invocations_per_instance"],
    }


def _write_shards(s3: Any, frames: list[str], per_shard: int, base: str) -> list[dict[str, Any]]:
    """One frame list per `invoke` task, in S3 (written at once: the demo's 300 frames are 6 shards); the
    plan keeps only their URIs."""
    starts = range(0, len(frames), per_shard)
    shards = [
        {
            "index": index,
            "frames_uri": f"{base}invocations/shard-{index:05d}.frames.json",
            "record_uri": f"{base}invocations/shard-{index:05d}.record.json",
        }
        for index in range(len(starts))
    ]
    bodies = {
        shard["frames_uri"]: json.dumps(frames[start : start + per_shard])
        for shard, start in zip(shards, starts, strict=True)
    }
    write_many(s3, bodies, CHECK_CONCURRENCY)
    return shards
