"""Which project zip a `pose_training` run trains, and with which settings.

An upload-triggered run reads the key from its triggering Asset event: the watcher's SqsSensorTrigger
puts the SQS messages it received in the event's payload (`{"message_batch": [...]}`), each message body
being the EventBridge "Object Created" event. A manual run names the zip with the `project_uri` param.

Training settings: the DAG's params; an upload may carry its own as S3 object metadata
(`aws s3 cp p.zip s3://.../ --metadata epochs=50,batch-size=8`), which an upload-triggered run takes
over the params' defaults (a manual run takes its params, as the trigger form shows them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
# Object metadata an upload may carry -> the param it sets.
METADATA_SETTINGS = {
    "epochs": "epochs",
    "batch-size": "batch_size",
    "net-type": "net_type",
    "backbone-weights": "backbone_weights",
    "train-crop": "train_crop",
}


class NoProject(ValueError):
    """The run cannot tell which project to train; the message says how to give it one."""


def uploads_in_events(asset_events: Iterable[Any]) -> list[tuple[str, str]]:
    """(bucket, key) of every "Object Created" in the SQS messages the Asset events carry, in order."""
    found: list[tuple[str, str]] = []
    for event in asset_events:
        extra = getattr(event, "extra", None) or (event.get("extra") if isinstance(event, Mapping) else None) or {}
        for message in (extra.get("payload") or {}).get("message_batch", []):
            detail = json.loads(message["Body"]).get("detail", {})
            upload = (detail.get("bucket", {}).get("name"), detail.get("object", {}).get("key"))
            if all(upload) and upload not in found:
                found.append(upload)
    return found


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = S3_URI.match(uri or "")
    if not match:
        raise NoProject(f"project_uri {uri!r} is not an S3 URI: give s3://<bucket>/<key>.zip")
    return match["bucket"], match["key"]


def choose_project(uploads: list[tuple[str, str]], project_uri: str, watched: str) -> tuple[str, str, str]:
    """(bucket, key, source) from the run's uploads, else its project_uri param."""
    if len(uploads) > 1:
        listed = ", ".join(f"s3://{b}/{k}" for b, k in uploads)
        raise NoProject(
            f"this run was triggered by {len(uploads)} uploads ({listed}); one run trains one project: "
            "trigger pose_training by hand once per project with project_uri=<each of these>"
        )
    if uploads:
        bucket, key = uploads[0]
        return bucket, key, "upload"
    if not project_uri:
        raise NoProject(
            f"no project to train: upload a zip under {watched} (the upload starts a run), or trigger "
            "with project_uri=s3://<bucket>/<key>.zip"
        )
    bucket, key = parse_s3_uri(project_uri)
    return bucket, key, "manual"


def training_settings(params: Mapping[str, Any], metadata: Mapping[str, str], source: str) -> dict[str, Any]:
    """The params, with an upload's object metadata over them for upload-triggered runs."""
    settings = {name: params[name] for name in METADATA_SETTINGS.values()}
    if source == "upload":
        for meta_key, name in METADATA_SETTINGS.items():
            if meta_key in metadata:
                value = metadata[meta_key]
                settings[name] = int(value) if isinstance(params[name], int) else value
    return settings


def resolve_run(s3: Any, params: Mapping[str, Any], dag_id: str, run_id: str, asset_events: list,
                settings: Any) -> dict[str, Any]:
    """The run's project, output prefix and training settings (JSON-safe, for XCom)."""
    from orchard import naming
    from orchard.pose_training.infra import WATCHED_PREFIX

    watched = f"s3://{settings.data_bucket}/{WATCHED_PREFIX}"
    bucket, key, source = choose_project(uploads_in_events(asset_events), params["project_uri"], watched)
    metadata = _object_metadata(s3, bucket, key) if source == "upload" else {}
    output = naming.resource_name("s3_prefix", dag_id, run_id, "model")  # pose_training/<run>/model/
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "bucket": bucket,
        "key": key,
        "project_uri": f"s3://{bucket}/{key}",
        "source": source,
        "output_uri": f"s3://{settings.artifacts_bucket}/{output}",
        "training": training_settings(params, metadata, source),
    }


def _object_metadata(s3: Any, bucket: str, key: str) -> dict[str, str]:
    """The upload's x-amz-meta-* (empty if it is gone: validate_project then says it does not exist)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return {}
        raise


def container_overrides(bucket: str, key: str, output_uri: str, training: Mapping[str, Any]) -> dict:
    """The job's containerOverrides: this run's project and output, and its training settings."""
    environment = {
        "TGT_S3_BUCKET": bucket,
        "DLC_PROJECT_PATH": key,
        "OUTPUT_PATH": output_uri,
        "DLC_EPOCHS": str(training["epochs"]),
        "DLC_BATCH_SIZE": str(training["batch_size"]),
        "DLC_NET_TYPE": training["net_type"],
        "DLC_BACKBONE_WEIGHTS": training["backbone_weights"],
        "DLC_TRAIN_CROP": training["train_crop"],
    }
    # An empty value keeps the image's default (pretrained weights, DeepLabCut's 448 px crop).
    return {"environment": [{"name": k, "value": v} for k, v in environment.items() if v != ""]}
