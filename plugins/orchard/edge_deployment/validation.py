"""validate_model: everything checkable before a billable resource starts (params the schema cannot judge,
the model archive's framework and shapes, the calibration frames, a package version already published).
Every refusal is an InputError naming the object and the fix."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from orchard import naming
from orchard.errors import InputError
from orchard.settings import load_settings

log = logging.getLogger(__name__)

MAX_INSPECTED_MODEL_BYTES = 512 * 1024 * 1024
FOLDER_PARAMS = ("calibration_uri", "camera_images_uri")


def as_folder(uri: str) -> str:
    """An S3 prefix param as a folder (one trailing `/`; empty stays empty): `.../calibration` must never also
    read `.../calibration-old/`. The one place edge_deployment normalizes its prefix params."""
    uri = uri.strip()
    return uri.rstrip("/") + "/" if uri else ""


def with_folders(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, **{name: as_folder(params.get(name) or "") for name in FOLDER_PARAMS}}


def validate(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Refuse a model that is not there, not the declared framework or not of the declared shape, and what
    the prepare job, Neo or the package step would refuse later; return the run's plan (plan.run_plan)."""
    from orchard import aws
    from orchard.edge_deployment.model_formats import ModelCheckError, check_archive, parse_input_shape
    from orchard.edge_deployment.plan import run_plan

    settings = load_settings()
    params = with_folders(params)
    _check_conf(params)
    try:
        shapes = parse_input_shape(params["input_shape"])
    except ModelCheckError as error:
        raise InputError(f"input_shape: {error}") from None
    s3 = aws.client("s3", settings.aws_conn_id)
    bucket, _, key = params["model_uri"][5:].partition("/")
    # Three independent reads at once: the model (its HEAD, then its body), the calibration folder, a package
    # of this version; refused below in the order the checks were always made.
    (size, archive), frames, source = aws.at_once(
        partial(_read_model, s3, bucket, key),
        partial(_has_calibration_frames, s3, params),
        partial(_published_package_source, s3, params, settings),
    )
    if size is None:
        raise InputError(
            f"model_uri {params['model_uri']} does not exist (or is not readable): upload the "
            "model archive there, or point model_uri at an existing model.tar.gz"
        )
    if archive is None:
        raise InputError(
            f"model_uri {params['model_uri']} is {size / 2**20:.0f} MiB: over the "
            f"{MAX_INSPECTED_MODEL_BYTES >> 20} MiB this check reads; edge models are small, "
            "is this the right archive?"
        )
    try:
        check = check_archive(archive, params["framework"], shapes)
    except ModelCheckError as error:
        raise InputError(f"{params['model_uri']}: {error}") from None
    if not frames:
        raise InputError(
            f"calibration_uri {params['calibration_uri']} holds no .npy frames: upload the "
            "frames (numpy.save of uint8 HxWxC or CxHxW arrays) there, or point calibration_uri "
            "at them"
        )
    _check_package_version(source, params, settings, run_id)
    log.info(
        "model %s: %s, inputs %s, %d bytes",
        params["model_uri"],
        check.framework,
        check.inputs,
        check.size_bytes,
    )
    return run_plan(params, json.dumps(shapes), run_id, settings) | {
        "model_files": check.files,
        "model_size_bytes": check.size_bytes,
    }


def _read_model(s3: Any, bucket: str, key: str) -> tuple[int | None, bytes | None]:
    """(size, archive bytes): (None, None) when the object is not there (HEAD 404); no bytes when it is over
    MAX_INSPECTED_MODEL_BYTES."""
    head = _head(s3, bucket, key)
    if head is None:
        return None, None
    if head["ContentLength"] > MAX_INSPECTED_MODEL_BYTES:
        return head["ContentLength"], None
    return head["ContentLength"], s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject's answer; None on 404 (as S3Hook.check_for_key: any other error is raised)."""
    from botocore.exceptions import ClientError

    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return None
        raise


def _check_conf(params: dict[str, Any]) -> None:
    problems = []
    if not params.get("calibration_uri"):
        problems.append(
            "calibration_uri is needed: the S3 prefix of .npy frames the drift reference (and int8 "
            "calibration) is computed on"
        )
    if params["framework"].upper() != "ONNX" and params["quantization"] == "int8":
        problems.append(
            f"quantization=int8 quantizes ONNX models (ONNX Runtime); for {params['framework']}, "
            "quantize before upload (e.g. a LiteRT full-integer model) and use quantization=none"
        )
    if params.get("simulated_devices") and not params.get("camera_images_uri"):
        problems.append("simulated_devices needs camera_images_uri (the frames the simulated cameras see)")
    names = params["device_names"]
    if len(set(names)) != len(names):
        problems.append(f"device_names repeats a name: {sorted(n for n in set(names) if names.count(n) > 1)}")
    if params["capture_batch_size"] > params["capture_buffer_size"]:
        problems.append(
            f"capture_batch_size {params['capture_batch_size']} exceeds capture_buffer_size "
            f"{params['capture_buffer_size']}: a batch must fit in the buffer"
        )
    if problems:
        raise InputError("; ".join(problems))


def _has_calibration_frames(s3: Any, params: dict[str, Any]) -> bool:
    """The prepare job's first check, made here: the calibration folder holds .npy frames."""
    bucket, _, prefix = params["calibration_uri"][5:].partition("/")
    page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
    return any(item["Key"].endswith(".npy") for item in page.get("Contents", []))


def _published_package_source(s3: Any, params: dict[str, Any], settings: Any) -> dict[str, Any] | None:
    """The `source` of the package already published as this version ({} when its manifest is unreadable);
    None when there is none, or force_repackage replaces it."""
    from orchard.operators.edge_package import PACKAGE_PREFIX, package_key

    if params.get("force_repackage") is True:
        return None
    key = package_key(PACKAGE_PREFIX, params["model_name"], params["model_version"])
    if _head(s3, settings.artifacts_bucket, key) is None:
        return None
    manifest_key = key.rsplit("/", 1)[0] + "/manifest.json"
    try:
        manifest = s3.get_object(Bucket=settings.artifacts_bucket, Key=manifest_key)["Body"].read()
        return json.loads(manifest).get("source") or {}
    except Exception:  # noqa: BLE001 - no readable manifest: it is not this run's
        return {}


def _check_package_version(
    source: dict[str, Any] | None, params: dict[str, Any], settings: Any, run_id: str
) -> None:
    """A package version names one content: an existing one (`source`: its manifest's) is refused now,
    before the prepare job and Neo run (the package step would refuse it after them), unless force_repackage
    — or it is this run's own package (the run was cleared after packaging: its manifest names this run's
    compilation job)."""
    from orchard.operators.edge_package import PACKAGE_PREFIX, package_key

    if source is None:
        return
    own_compilation = naming.resource_name("sagemaker_compilation_job", "edge_deployment", run_id)
    if source.get("compilation_job") == own_compilation:
        return
    key = package_key(PACKAGE_PREFIX, params["model_name"], params["model_version"])
    raise InputError(
        f"s3://{settings.artifacts_bucket}/{key} exists: version {params['model_version']} of "
        f"{params['model_name']} was already published. Bump model_version, or set "
        "force_repackage to replace it"
    )
