"""Which project zips a `pose_training` run trains, and with which settings.

An upload-triggered run reads the keys from its triggering Asset events: the watcher's SqsSensorTrigger
puts the SQS messages it received in each event's payload (`{"message_batch": [...]}`), each message body
being the EventBridge "Object Created" event. The scheduler folds every Asset event queued since the
DAG's last run into ONE run (Airflow 3: a run's `triggering_asset_events` lists all of them), so a run
trains every upload it carries, one mapped task-group instance per project (`projects_of_run`). A manual
run names one zip with the `project_uri` param.

Training settings: the DAG's params; an upload may carry its own as S3 object metadata
(`aws s3 cp p.zip s3://.../ --metadata epochs=50,batch-size=8`), which that upload's training takes over
the params' defaults (a manual run takes its params, as the trigger form shows them). Metadata values are
checked against the same Param schema as the trigger form (`validated_metadata`): a bad value fails that
project's validation at once, naming the key.
"""

from __future__ import annotations

import copy
import hashlib
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
_INTEGER = re.compile(r"[+-]?\d+")


class NoProject(ValueError):
    """The run cannot tell which project to train; the message says how to give it one."""


class BadMetadata(ValueError):
    """An upload's object metadata fails the DAG's Param schema; the message names the key and the fix."""


def uploads_in_events(asset_events: Iterable[Any]) -> list[tuple[str, str]]:
    """(bucket, key) of every "Object Created" in the SQS messages the Asset events carry, in order."""
    found: list[tuple[str, str]] = []
    for event in asset_events:
        extra = (
            getattr(event, "extra", None)
            or (event.get("extra") if isinstance(event, Mapping) else None)
            or {}
        )
        for message in (extra.get("payload") or {}).get("message_batch", []):
            detail = json.loads(message["Body"]).get("detail", {})
            upload = (detail.get("bucket", {}).get("name"), detail.get("object", {}).get("key"))
            if all(upload) and upload not in found:
                found.append(upload)
    return found


def upload_versions(asset_events: Iterable[Any]) -> dict[tuple[str, str], str]:
    """(bucket, key) -> the uploaded object's version as the "Object Created" event names it: `etag:<etag>`
    (the content: the same zip uploaded twice is one version), else `version:<version-id>`, else
    `sequencer:<sequencer>` (S3 EventBridge event detail fields, "EventBridge event message structure",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    versions: dict[tuple[str, str], str] = {}
    for event in asset_events:
        extra = (
            getattr(event, "extra", None)
            or (event.get("extra") if isinstance(event, Mapping) else None)
            or {}
        )
        for message in (extra.get("payload") or {}).get("message_batch", []):
            detail = json.loads(message["Body"]).get("detail", {})
            obj = detail.get("object", {})
            upload = (detail.get("bucket", {}).get("name"), obj.get("key"))
            version = next(
                (
                    f"{field}:{obj[name]}"
                    for name, field in (
                        ("etag", "etag"),
                        ("version-id", "version"),
                        ("sequencer", "sequencer"),
                    )
                    if obj.get(name) and obj.get(name) != "null"
                ),
                "",
            )
            if all(upload) and version:
                versions.setdefault(upload, version)
    return versions


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = S3_URI.match(uri or "")
    if not match:
        raise NoProject(f"project_uri {uri!r} is not an S3 URI: give s3://<bucket>/<key>.zip")
    return match["bucket"], match["key"]


def choose_projects(
    uploads: list[tuple[str, str]], project_uri: str, watched: str
) -> list[tuple[str, str, str]]:
    """(bucket, key, source) of each project the run trains: all its uploads, else its project_uri param."""
    if uploads:
        return [(bucket, key, "upload") for bucket, key in uploads]
    if not project_uri:
        raise NoProject(
            f"no project to train: upload a zip under {watched} (the upload starts a run), or trigger "
            "with project_uri=s3://<bucket>/<key>.zip"
        )
    bucket, key = parse_s3_uri(project_uri)
    return [(bucket, key, "manual")]


def project_slug(key: str) -> str:
    """A short folder name for one project of a run: the zip's name and a hash of its whole key."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".zip")
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def projects_of_run(
    params: Mapping[str, Any], dag_id: str, run_id: str, asset_events: list, settings: Any
) -> list[dict[str, Any]]:
    """One entry per project the run trains (JSON-safe, for XCom): where it is, its job and output names.

    Names are deterministic in (dag, run, key): a retry finds the same job (ReattachingBatchOperator) and
    writes to the same prefix.
    """
    from orchard import naming
    from orchard.pose_training.infra import WATCHED_PREFIX

    watched = f"s3://{settings.data_bucket}/{WATCHED_PREFIX}"
    projects = []
    chosen = choose_projects(uploads_in_events(asset_events), params["project_uri"], watched)
    versions = upload_versions(asset_events)
    for bucket, key, source in chosen:
        output = naming.resource_name("s3_prefix", dag_id, run_id, f"{project_slug(key)}/model")
        projects.append(
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "bucket": bucket,
                "key": key,
                "project_uri": f"s3://{bucket}/{key}",
                "source": source,
                "object_version": versions.get((bucket, key), ""),
                "job_name": naming.resource_name("batch_job", dag_id, run_id, f"s3://{bucket}/{key}"),
                "output_uri": f"s3://{settings.artifacts_bucket}/{output}",
            }
        )
    return projects


def run_projects(
    params: Mapping[str, Any], dag_run: Any, triggering_asset_events: Any
) -> list[dict[str, Any]]:
    """The DAG's `find_projects`: `projects_of_run` for this run (every upload of every triggering Asset
    event, or `project_uri`) with the live settings; a run with no project to train is an InputError."""
    from orchard.errors import InputError
    from orchard.settings import load_settings

    events = [event for events in (triggering_asset_events or {}).values() for event in events]
    try:
        projects = projects_of_run(params, dag_run.dag_id, dag_run.run_id, events, load_settings())
    except NoProject as error:
        raise InputError(str(error)) from None
    print(f"{len(projects)} project(s) to train: {[p['project_uri'] for p in projects]}")
    return projects


def validated_metadata(metadata: Mapping[str, str], schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The upload's training metadata as param values, each checked with the DAG's Param of that name.

    `schema` maps param names to the DAG's `Param` objects (`dag.params.get_param(name)`): the same JSON
    schema the trigger form validates. Integers arrive as text (S3 metadata is text): a whole number is
    converted, anything else is left for the schema to refuse.
    """
    values: dict[str, Any] = {}
    for meta_key, name in METADATA_SETTINGS.items():
        if meta_key not in metadata:
            continue
        raw = metadata[meta_key]
        param = schema[name]
        value: Any = raw
        if param.schema.get("type") == "integer" and _INTEGER.fullmatch(raw.strip()):
            value = int(raw)
        try:
            values[name] = copy.deepcopy(param).resolve(value)
        except Exception as error:  # ParamValidationError: its first line says what is wrong
            reason = str(error).strip().splitlines()[0]
            raise BadMetadata(
                f"upload metadata {meta_key}={raw!r} of {where} is not a valid {name} ({reason}): re-upload "
                f"with a valid x-amz-meta-{meta_key} (e.g. --metadata {meta_key}={param.value}), or drop it "
                "to use the DAG's default"
            ) from None
    return values


def training_settings(params: Mapping[str, Any], metadata_values: Mapping[str, Any]) -> dict[str, Any]:
    """The params, with an upload's validated metadata values over them."""
    settings = {name: params[name] for name in METADATA_SETTINGS.values()}
    settings.update(metadata_values)
    return settings


def project_training(
    s3: Any, project: Mapping[str, Any], params: Mapping[str, Any], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """The training settings of one project: the params, and for an upload its validated metadata."""
    if project["source"] != "upload":
        return training_settings(params, {})
    metadata = _object_metadata(s3, project["bucket"], project["key"])
    return training_settings(params, validated_metadata(metadata, schema, project["project_uri"]))


def _object_metadata(s3: Any, bucket: str, key: str) -> dict[str, str]:
    """The upload's x-amz-meta-* (empty if it is gone: validate_project then says it does not exist)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return {}
        raise


def container_overrides(
    bucket: str,
    key: str,
    output_uri: str,
    training: Mapping[str, Any],
    limits: Mapping[str, int] | None = None,
) -> dict:
    """The job's containerOverrides: this project and its output, its training settings and the bounds the
    job re-checks before extracting (the validation's `max_unzipped_mb`, `max_zip_ratio`)."""
    limits = limits or {}
    environment = {
        "DLC_MAX_UNZIPPED_MB": str(limits.get("max_unzipped_mb", "")),
        "DLC_MAX_ZIP_RATIO": str(limits.get("max_zip_ratio", "")),
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
    return {"environment": [{"name": k, "value": v} for k, v in environment.items() if v not in ("", None)]}


# ------------------------------------------------------------------------------ one training per upload

# Under the pipeline's artifacts prefix: one marker per object version.
CLAIMS_PREFIX = "pose_training/_uploads/"


class DuplicateUpload(Exception):
    """This object version is already trained by another run; the message says which and how to retrain."""


def object_version(s3: Any, project: Mapping[str, Any]) -> str:
    """The project's object version: from its event, else (event without it) the object's ETag now."""
    if project.get("object_version"):
        return project["object_version"]
    head = s3.head_object(Bucket=project["bucket"], Key=project["key"])
    return f"etag:{head['ETag'].strip(chr(34))}"


def claim_upload(
    s3: Any, artifacts_bucket: str, project: Mapping[str, Any], run_id: str, log: Any = print
) -> str:
    """Record that `run_id` trains this object version, atomically; return the marker's S3 URI.

    The marker is created with a conditional PutObject (`If-None-Match: *`: "PutObject - Amazon S3 API
    Reference", https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html): of two runs racing for
    one upload (the same zip uploaded twice, one event delivered twice: EventBridge delivers at least once)
    exactly one creates it; the other gets 412 PreconditionFailed and raises DuplicateUpload. A retry of the
    run that holds the marker goes on. Manual runs (`project_uri`) are never deduplicated: a person asked.
    """
    version = object_version(s3, project)
    digest = hashlib.sha256(f"{project['bucket']}/{project['key']}@{version}".encode()).hexdigest()[:40]
    key = f"{CLAIMS_PREFIX}{digest}.json"
    marker = f"s3://{artifacts_bucket}/{key}"
    body = json.dumps(
        {
            "project_uri": project["project_uri"],
            "object_version": version,
            "run_id": run_id,
            "job_name": project.get("job_name", ""),
        }
    ).encode()
    try:
        s3.put_object(
            Bucket=artifacts_bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json"
        )
        log(f"{project['project_uri']} ({version}): this run trains it (marker {marker})")
        return marker
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code not in ("PreconditionFailed", "412"):
            raise  # 409 ConditionalRequestConflict (a racing write): the task's retry decides again
    holder = json.loads(s3.get_object(Bucket=artifacts_bucket, Key=key)["Body"].read())
    if holder.get("run_id") == run_id:
        log(f"{project['project_uri']} ({version}): already claimed by this run (a retry): going on")
        return marker
    raise DuplicateUpload(
        f"{project['project_uri']} ({version}) is already trained by run {holder.get('run_id')} (marker "
        f"{marker}): this duplicate upload event is skipped. To train the same zip again, trigger the DAG "
        f"with project_uri={project['project_uri']}, or delete the marker"
    )


# ------------------------------------------------------------------------------ ready to train


def prepare_project(
    project: Mapping[str, Any], params: Mapping[str, Any], dag_params: Any, run_id: str, log: Any = print
) -> dict[str, Any]:
    """The DAG's `validate_project`: whether this project can train at all, and with which settings.

    Its training settings (the params, an upload's metadata checked with the DAG's own Params
    `dag_params`), its zip checked (`project.validate_project`), an upload claimed for this run (a
    duplicate event is skipped, naming the run that trains it) and the job's container overrides. Bad
    input raises InputError (no retry, nothing started)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from orchard import aws
    from orchard.errors import InputError
    from orchard.pose_training.project import MiB, validate_project, zip_limits
    from orchard.settings import load_settings

    settings = load_settings()  # once: each read looks up every Airflow Variable the environment lacks
    s3 = aws.client("s3", conn_id=settings.aws_conn_id)
    schema = {name: dag_params.get_param(name) for name in METADATA_SETTINGS.values()}
    limits = zip_limits(params)
    try:
        training = project_training(s3, project, params, schema)
    except BadMetadata as error:
        raise InputError(str(error)) from None
    summary = validate_project(  # ProjectRejected is an InputError
        s3,
        project["bucket"],
        project["key"],
        params["max_zip_mb"] * MiB,
        max_unzipped_bytes=limits["max_unzipped_mb"] * MiB,
        max_ratio=limits["max_zip_ratio"],
    )
    log(f"project OK: {summary}; training {training}")
    if project["source"] == "upload":  # one training per object version (issue 13.2)
        try:
            claim_upload(s3, settings.artifacts_bucket, project, run_id, log)
        except DuplicateUpload as duplicate:
            raise AirflowSkipException(str(duplicate)) from None
    overrides = container_overrides(
        project["bucket"], project["key"], project["output_uri"], training, limits
    )
    return {
        **project,
        "training": training,
        "labeled_frames": summary.labeled_frames,
        "container_overrides": overrides,
    }
