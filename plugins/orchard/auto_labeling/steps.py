"""The auto_labeling DAG's steps (dags/auto_labeling.py wires them): plain functions on small dicts.

Imported inside tasks only. AWS calls go through the Amazon provider's hooks (and orchard's where the
provider has none), so they honour the `aws_default` connection. The plan made by `plan_run` is the
run's small JSON state in XCom: names, URIs, counts; frame lists and predictions live in S3.
"""

from __future__ import annotations

import json
import time
from typing import Any

from orchard import naming
from orchard.errors import InputError
from orchard.settings import load_settings

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VARIANT = "AllTraffic"
PRELABEL_ATTRIBUTE = "prelabel"
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
# What each kind of model is sent and asked for (InvokeEndpointAsync ContentType / Accept). An empty
# content type: each frame's own (CONTENT_TYPES, by suffix; the invoke operator applies it).
# orchard: include/auto_labeling/inference.py takes image/png, image/jpeg (input_fn) and answers JSON.
# jumpstart: SageMaker JumpStart's object detectors take `application/x-image` and answer the class
# names with the boxes (`labels`, which manifest.detections_from_response needs) only for
# `application/json;verbose` (the JumpStart notebooks of aws/amazon-sagemaker-examples invoke with
# ContentType="application/x-image", Accept="application/json;verbose").
MODEL_ADAPTERS = {
    "orchard": {"content_type": "", "accept": "application/json"},
    "jumpstart": {"content_type": "application/x-image", "accept": "application/json;verbose"},
}
# Ground Truth's CORS rule for input images ("CORS Requirement for Input Image Data",
# https://docs.aws.amazon.com/sagemaker/latest/dg/sms-cors-update.html): without it, tasks fail.
GROUND_TRUTH_CORS = [
    {"AllowedHeaders": [], "AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "ExposeHeaders": []}
]


def inference_image(region: str) -> str:
    """The AWS PyTorch CPU inference container: it runs model.tar.gz's code/inference.py (inference toolkit),
    installing code/requirements.txt first, so the detector needs no image of its own."""
    return f"763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def folder(uri: str) -> str:
    """A `*_prefix` param is a folder: `s3://b/cam1` means `s3://b/cam1/`, never `cam10/` or `cam1-old/`.
    The one place that normalizes it; a bucket alone (`s3://b`) means the whole bucket."""
    uri = uri.strip()
    bucket, key = split(uri)
    return f"s3://{bucket}/{key}" if not key or key.endswith("/") else f"s3://{bucket}/{key}/"


def _s3(conn_id: str):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id)


def _sagemaker(conn_id: str):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    return SageMakerHook(aws_conn_id=conn_id)


# ----------------------------------------------------------------------------------------- plan


def plan_run(params: dict[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    settings = load_settings()
    conn = settings.aws_conn_id
    s3 = _s3(conn)
    existing = (params["existing_endpoint_name"] or "").strip()
    prefix = naming.resource_name("s3_prefix", dag_id, run_id)
    base = f"s3://{settings.artifacts_bucket}/{prefix}"
    frames_prefix = folder(params["frames_prefix"])
    frames = _list_frames(s3, frames_prefix, params["max_frames"])
    categories = [c.strip() for c in params["label_categories"] if c.strip()]
    if len(set(categories)) != len(categories):
        raise InputError(f"label_categories has duplicates: {categories}; give each category once")
    adapter = params.get("model_format", "orchard")
    if adapter not in MODEL_ADAPTERS:
        raise InputError(f"model_format {adapter!r} is not one of {', '.join(MODEL_ADAPTERS)}")
    if not params.get("stop_at_manifest"):
        _check_ground_truth(settings, params, frames_uri=frames_prefix)
    plan = {
        "dag_id": dag_id,
        "region": settings.region,
        "conn_id": conn,
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
    }
    if existing:
        plan.update(
            endpoint_name=existing,
            endpoint_config_name="",
            model_name="",
            **_existing_endpoint(conn, existing),
        )
    else:
        model_data = (params["model_data_uri"] or "").strip()
        if not model_data:
            raise InputError("give model_data_uri (an s3://…/model.tar.gz) or existing_endpoint_name")
        bucket, key = split(model_data)
        if not s3.check_for_key(key, bucket):
            raise InputError(
                f"model_data_uri {model_data} does not exist: upload the model.tar.gz or fix the URI"
            )
        plan.update(
            endpoint_name=naming.resource_name("sagemaker_endpoint", dag_id, run_id),
            endpoint_config_name=naming.resource_name("sagemaker_endpoint_config", dag_id, run_id),
            model_name=naming.resource_name("sagemaker_model", dag_id, run_id),
            model_data_uri=model_data,
            image_uri=(params["image_uri"] or "").strip() or inference_image(settings.region),
            output_path=f"{base}async/output/",
            failure_path=f"{base}async/failure/",
            max_concurrent_per_instance=params["max_concurrent_invocations_per_instance"],
        )
    plan["shards"] = _write_shards(s3, frames, params["frames_per_shard"], base)
    return plan


def _check_ground_truth(settings: Any, params: dict[str, Any], frames_uri: str) -> None:
    """What Ground Truth needs, checked before the endpoint exists rather than after every frame was
    inferred: its task functions in this region, the workteam, and the frames bucket's CORS rule."""
    from botocore.exceptions import ClientError

    from orchard.hooks.labeling_job import task_lambda_arns

    try:
        task_lambda_arns(params["labeling_mode"], settings.region)
    except ValueError as error:
        raise InputError(str(error)) from None
    arn = params["workteam_arn"]
    parts = arn.split(":")
    region, resource = parts[3], parts[5]
    if region != settings.region:
        raise InputError(
            f"workteam_arn {arn} is in {region}, but the labeling job runs in {settings.region}: "
            f"give a workteam of {settings.region}"
        )
    kind, _, name = resource.removeprefix("workteam/").partition("/")
    # the public (Mechanical Turk) and vendor workforces are not yours to describe
    if kind == "private-crowd":
        try:
            _sagemaker(settings.aws_conn_id).conn.describe_workteam(WorkteamName=name)
        except ClientError as error:
            raise InputError(
                f"workteam_arn {arn}: {error.response['Error']['Message']}: create the private workteam "
                "(SageMaker console, Ground Truth > Labeling workforces) or give an existing one"
            ) from None
    bucket, _ = split(frames_uri)
    try:
        rules = _s3(settings.aws_conn_id).get_conn().get_bucket_cors(Bucket=bucket)["CORSRules"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchCORSConfiguration":
            raise InputError(
                f"frames bucket {bucket}: cannot read its CORS configuration "
                f"({error.response['Error']['Code']}): allow s3:GetBucketCors"
            ) from None
        rules = []
    if not any(
        "GET" in rule.get("AllowedMethods", []) and "*" in rule.get("AllowedOrigins", []) for rule in rules
    ):
        raise InputError(
            f"frames bucket {bucket} has no CORS rule allowing GET from any origin: Ground Truth's "
            "workers could not load the frames (https://docs.aws.amazon.com/sagemaker/latest/dg/"
            f"sms-cors-update.html). Add it: aws s3api put-bucket-cors --bucket {bucket} "
            f"--cors-configuration '{json.dumps({'CORSRules': GROUND_TRUTH_CORS})}' "
            "— or set stop_at_manifest"
        )


def _list_frames(s3: Any, prefix_uri: str, max_frames: int) -> list[str]:
    """The frames under the folder `prefix_uri` (ends in /): every image checked as the model's handler
    would read it (not empty, the PNG / JPEG signature its suffix promises) before anything is billed."""
    bucket, prefix = split(prefix_uri)
    if not s3.check_for_bucket(bucket):
        raise InputError(f"frames_prefix {prefix_uri}: bucket {bucket} does not exist or is not readable")
    sizes = {
        item["Key"]: item["Size"]
        for page in s3.get_conn().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"].lower().endswith(IMAGE_SUFFIXES)
    }
    keys = sorted(sizes)
    if not keys:
        raise InputError(
            f"no frames (.png, .jpg, .jpeg) under {prefix_uri}: check frames_prefix (a folder: "
            "its sub-folders are read, sibling folders that share its name's start are not)"
        )
    if len(keys) > max_frames:
        print(f"{len(keys)} frames under {prefix_uri}; labeling the first {max_frames} (param max_frames)")
    keys = keys[:max_frames]
    _check_frames(s3.get_conn(), bucket, keys, sizes)
    return [f"s3://{bucket}/{key}" for key in keys]


# What a decodable frame starts with, by suffix (PNG: the 8-byte signature, RFC 2083 §3.1; JPEG: the SOI
# marker FF D8 FF, ITU T.81 Annex B): the model's handler (cv2.imdecode) refuses anything else.
SIGNATURES = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",)}
CHECK_CONCURRENCY = 16


def _check_frames(client: Any, bucket: str, keys: list[str], sizes: dict[str, int]) -> None:
    """Refuse 0-byte frames and frames that are not the image their suffix says (one ranged GET of the
    first 8 bytes each), naming their S3 URIs: the endpoint would only answer each with a decoder error."""
    from concurrent.futures import ThreadPoolExecutor

    def head(key: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=key, Range="bytes=0-7")["Body"].read()

    empty = [key for key in keys if sizes[key] == 0]
    rest = [key for key in keys if sizes[key] > 0]
    with ThreadPoolExecutor(max_workers=CHECK_CONCURRENCY) as pool:
        starts = dict(zip(rest, pool.map(head, rest), strict=True))
    wrong = [key for key, start in starts.items() if not start.startswith(SIGNATURES[_suffix(key)])]
    problems = [f"s3://{bucket}/{key} is empty (0 bytes)" for key in empty] + [
        f"s3://{bucket}/{key} is not a {_suffix(key)[1:].upper()} image (starts with {starts[key][:8]!r})"
        for key in wrong
    ]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise InputError(
            f"{len(problems)} frame(s) cannot be decoded: {shown}. Re-upload them from the camera's "
            "recording, or delete them (or move them out of frames_prefix), then trigger again"
        )


def _suffix(key: str) -> str:
    return "." + key.rsplit(".", 1)[-1].lower()


def _existing_endpoint(conn: str, name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    hook = _sagemaker(conn)
    try:
        endpoint = hook.conn.describe_endpoint(EndpointName=name)
    except ClientError as error:
        raise InputError(f"existing_endpoint_name {name}: {error.response['Error']['Message']}") from None
    if endpoint["EndpointStatus"] != "InService":
        raise InputError(f"endpoint {name} is {endpoint['EndpointStatus']}, not InService")
    config = hook.conn.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    output = config.get("AsyncInferenceConfig", {}).get("OutputConfig")
    if not output:
        raise InputError(
            f"endpoint {name} is not asynchronous (its config has no AsyncInferenceConfig): "
            "give an async endpoint, or a model to deploy one"
        )
    return {
        "output_path": output["S3OutputPath"],
        "failure_path": output.get("S3FailurePath", output["S3OutputPath"]),
        "instance_type": config["ProductionVariants"][0].get("InstanceType", "unknown"),
    }


def _write_shards(s3: Any, frames: list[str], per_shard: int, base: str) -> list[dict[str, Any]]:
    shards = []
    for index, start in enumerate(range(0, len(frames), per_shard)):
        frames_uri = f"{base}invocations/shard-{index:05d}.frames.json"
        bucket, key = split(frames_uri)
        s3.load_string(json.dumps(frames[start : start + per_shard]), key, bucket, replace=True)
        shards.append(
            {
                "index": index,
                "frames_uri": frames_uri,
                "record_uri": f"{base}invocations/shard-{index:05d}.record.json",
            }
        )
    return shards


# ----------------------------------------------------------------------------------- setup


def create_model(plan: dict[str, Any]) -> str:
    if not plan["owned"]:
        return ""
    hook = _sagemaker(plan["conn_id"])
    if not _exists(hook.conn.describe_model, ModelName=plan["model_name"]):
        hook.conn.create_model(
            ModelName=plan["model_name"],
            ExecutionRoleArn=plan["role_arn"],
            PrimaryContainer={
                "Image": plan["image_uri"],
                "ModelDataUrl": plan["model_data_uri"],
                "Environment": {"MODEL_NAME": plan["model_id"]},
            },
            Tags=[{"Key": "orchard:dag", "Value": plan["dag_id"]}],
        )
    return plan["model_name"]


def create_endpoint_config(plan: dict[str, Any]) -> str:
    if not plan["owned"]:
        return ""
    hook = _sagemaker(plan["conn_id"])
    if not _exists(hook.conn.describe_endpoint_config, EndpointConfigName=plan["endpoint_config_name"]):
        hook.conn.create_endpoint_config(
            EndpointConfigName=plan["endpoint_config_name"],
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": plan["model_name"],
                    "InstanceType": plan["instance_type"],
                    "InitialInstanceCount": 1,
                }
            ],
            AsyncInferenceConfig={
                "OutputConfig": {"S3OutputPath": plan["output_path"], "S3FailurePath": plan["failure_path"]},
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": plan["max_concurrent_per_instance"]},
            },
            Tags=[{"Key": "orchard:dag", "Value": plan["dag_id"]}],
        )
    return plan["endpoint_config_name"]


def _exists(describe: Any, **kwargs: Any) -> bool:
    from botocore.exceptions import ClientError

    try:
        describe(**kwargs)
        return True
    except ClientError as error:
        if (
            "Could not find" in error.response["Error"]["Message"]
            or error.response["Error"]["Code"] == "ResourceNotFound"
        ):
            return False
        raise


def scale_endpoint(plan: dict[str, Any]) -> dict[str, str]:
    from orchard.hooks.autoscaling import EndpointAutoScalingHook

    if not plan["owned"]:
        print(f"endpoint {plan['endpoint_name']} is not this run's: its scaling is left as it is")
        return {}
    hook = EndpointAutoScalingHook(aws_conn_id=plan["conn_id"])
    return hook.scale_with_backlog(plan["endpoint_name"], VARIANT, max_instances=plan["max_instances"])


# -------------------------------------------------------------------------------- teardown


def remove_endpoint_resources(plan: dict[str, Any]) -> None:
    """The run's cleanup, whatever failed and wherever: every resource is found by its deterministic name
    (orchard.naming, in the plan), so a setup that failed after creating is cleaned as well as one that
    succeeded. Scaling first (alarm, policies, scalable target), then endpoint, config and model."""
    remove_autoscaling(plan)
    delete_endpoint_stack(plan)


def remove_autoscaling(plan: dict[str, Any]) -> None:
    from orchard.hooks.autoscaling import EndpointAutoScalingHook

    if not plan["owned"]:
        return print(f"endpoint {plan['endpoint_name']} is not this run's: its scaling is left as it is")
    removed = EndpointAutoScalingHook(aws_conn_id=plan["conn_id"]).remove_scaling(
        plan["endpoint_name"], VARIANT
    )
    print("removed: " + ", ".join(removed))


def delete_endpoint_stack(plan: dict[str, Any]) -> None:
    """Endpoint, then its config, then the model; each one only if this run created it and it still exists."""
    if not plan["owned"]:
        return print(f"endpoint {plan['endpoint_name']} is not this run's: left as it is")
    conn = _sagemaker(plan["conn_id"]).conn
    for describe, delete, key, name in (
        (conn.describe_endpoint, conn.delete_endpoint, "EndpointName", plan["endpoint_name"]),
        (
            conn.describe_endpoint_config,
            conn.delete_endpoint_config,
            "EndpointConfigName",
            plan["endpoint_config_name"],
        ),
        (conn.describe_model, conn.delete_model, "ModelName", plan["model_name"]),
    ):
        if _exists(describe, **{key: name}):
            delete(**{key: name})
            print(f"deleted {key[:-4].lower()} {name}")
        else:
            print(f"no {key[:-4].lower()} {name}: nothing to delete")


def stop_labeling_job(plan: dict[str, Any]) -> str:
    """Stop the run's Ground Truth job (found by its deterministic name) if it is still in progress: a run
    that failed or was stopped must not leave workers labeling (billed per object). Returns its status.
    StopLabelingJob: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopLabelingJob.html"""
    from botocore.exceptions import ClientError

    name = plan["labeling_job_name"]
    conn = _sagemaker(plan["conn_id"]).conn
    try:
        status = conn.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFound":
            print(f"no labeling job {name}: nothing to stop")
            return "none"
        raise
    if status in ("Initializing", "InProgress"):
        conn.stop_labeling_job(LabelingJobName=name)
        print(f"labeling job {name} was {status}: stopped (StopLabelingJob)")
        return "Stopping"
    print(f"labeling job {name} is {status}: nothing to stop")
    return status


# --------------------------------------------------------------------------------- results


def collect_predictions(summaries: list[dict[str, Any]], plan: dict[str, Any]) -> dict[str, Any]:
    """Totals over the shards, the failures with their reasons (in S3), and the endpoint's lifetime so far.
    A frame that never got an answer is a failure like the others ("unanswered": true): the manifest is
    built for the answered frames and the report lists what is missing."""
    s3 = _s3(plan["conn_id"])
    answered, failures = [], []
    for summary in summaries:
        bucket, key = split(summary["record_uri"])
        for result in json.loads(s3.read_key(key, bucket))["results"]:
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
    for uri, body in ((predictions_uri, answered), (failures_uri, failures)):
        bucket, key = split(uri)
        s3.load_string(json.dumps(body), key, bucket, replace=True)
    for failure in failures[:20]:
        print(f"failed: {failure['input']}: {failure['reason'][:300]}")
    return {
        "answered": len(answered),
        "failed": len(failures),
        "unanswered": sum(1 for failure in failures if failure["unanswered"]),
        "missing": [failure["input"] for failure in failures[:MISSING_SHOWN]],
        "predictions_uri": predictions_uri,
        "failures_uri": failures_uri,
        "endpoint_seconds": _endpoint_seconds(plan),
    }


MISSING_SHOWN = 20  # failed frames named in the report (all of them are in failures.json)


def _endpoint_seconds(plan: dict[str, Any]) -> float:
    if not plan["owned"]:
        return 0.0
    try:
        endpoint = _sagemaker(plan["conn_id"]).conn.describe_endpoint(EndpointName=plan["endpoint_name"])
    except Exception:
        return 0.0
    created = endpoint["CreationTime"]
    return max(0.0, time.time() - created.timestamp())


def build_manifest(plan: dict[str, Any], collected: dict[str, Any]) -> dict[str, Any]:
    from orchard.auto_labeling import manifest

    s3 = _s3(plan["conn_id"])
    bucket, key = split(collected["predictions_uri"])
    lines, models, boxes = [], set(), 0
    for item in json.loads(s3.read_key(key, bucket)):
        out_bucket, out_key = split(item["output"])
        response = json.loads(s3.read_key(out_key, out_bucket))
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
    for name, body in (
        ("manifest_uri", manifest.to_jsonl(lines)),
        ("categories_uri", json.dumps(categories, indent=1)),
        ("template_uri", manifest.worker_template(plan["mode"], PRELABEL_ATTRIBUTE)),
    ):
        out_bucket, out_key = split(uris[name])
        s3.load_string(body, out_key, out_bucket, replace=True)
    return {**uris, "lines": len(lines), "boxes": boxes, "models": sorted(models)}


def _image_size(s3: Any, uri: str) -> dict[str, int]:
    """For responses without image_size (JumpStart's): read the frame's header."""
    import io

    from PIL import Image

    bucket, key = split(uri)
    body = s3.get_key(key, bucket).get()["Body"].read()
    with Image.open(io.BytesIO(body)) as image:
        return {"width": image.width, "height": image.height, "depth": len(image.getbands())}


def read_verified(plan: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    from orchard.auto_labeling import manifest

    s3 = _s3(plan["conn_id"])
    bucket, key = split(job["output_manifest"])
    lines = [json.loads(line) for line in s3.read_key(key, bucket).splitlines() if line.strip()]
    dataset = manifest.verified_dataset(
        lines,
        source_attribute=PRELABEL_ATTRIBUTE,
        verified_attribute=job["label_attribute"],
        mode=plan["mode"],
    )
    verified_uri = f"{plan['base_uri']}verified/verified.jsonl"
    out_bucket, out_key = split(verified_uri)
    s3.load_string(
        "".join(json.dumps(r) + "\n" for r in dataset["records"]), out_key, out_bucket, replace=True
    )
    policy_key = f"{key.split('/manifests/')[0]}/annotations/auto-accept-policy.txt"
    policy = s3.read_key(policy_key, bucket) if s3.check_for_key(policy_key, bucket) else ""
    return {
        **dataset["counts"],
        "verified_uri": verified_uri,
        "job_name": job["job_name"],
        "output_manifest": job["output_manifest"],
        "auto_accept_policy": policy,
    }


# ---------------------------------------------------------------------------------- report

GROUND_TRUTH_PRICE_PER_OBJECT = (
    0.08  # USD, first 50,000 objects a month (aws.amazon.com/sagemaker/groundtruth/pricing, 2026-11)
)


def publish_report(
    plan: dict[str, Any],
    collected: dict[str, Any],
    manifest: dict[str, Any],
    verified: dict[str, Any] | None,
    dag_id: str,
    run_id: str,
) -> str:
    from orchard.reports import Report

    settings = load_settings()
    s3 = _s3(plan["conn_id"])
    report = Report("Auto-labeling", dag_id, run_id)
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
    if collected["failed"]:
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
    report.add_figure(
        "samples",
        _sample_grid(s3, manifest["manifest_uri"], verified),
        "Sample frames: predicted boxes (red), verified boxes (green, dashed)",
    )
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
        report.add_text(
            f"Ground Truth: {labeled} objects × ${GROUND_TRUTH_PRICE_PER_OBJECT:.2f} ≈ "
            f"${labeled * GROUND_TRUTH_PRICE_PER_OBJECT:,.2f} (list price, first 50,000 objects a month; "
            "workforce charges extra for vendor workforces)."
        )
    bucket = settings.reports_bucket or settings.artifacts_bucket
    return report.publish(s3, bucket, settings.reports_prefix)


def _sample_grid(s3: Any, manifest_uri: str, verified: dict[str, Any] | None, count: int = 6) -> Any:
    import io

    from matplotlib.patches import Rectangle
    from PIL import Image

    from orchard.reports import new_figure

    bucket, key = split(manifest_uri)
    lines = [json.loads(line) for line in s3.read_key(key, bucket).splitlines() if line.strip()]
    lines = sorted(lines, key=lambda line: -len(line[PRELABEL_ATTRIBUTE]["annotations"]))[:count]
    verified_boxes: dict[str, list[dict]] = {}
    if verified:
        v_bucket, v_key = split(verified["verified_uri"])
        for line in s3.read_key(v_key, v_bucket).splitlines():
            record = json.loads(line)
            verified_boxes[record["source-ref"]] = record["annotations"]
    columns = 3
    rows = max(1, -(-len(lines) // columns))
    figure = new_figure(figsize=(4 * columns, 2.6 * rows))
    for index, line in enumerate(lines):
        axes = figure.add_subplot(rows, columns, index + 1)
        f_bucket, f_key = split(line["source-ref"])
        with Image.open(io.BytesIO(s3.get_key(f_key, f_bucket).get()["Body"].read())) as image:
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
