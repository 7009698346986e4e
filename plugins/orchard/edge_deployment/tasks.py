"""The work behind edge_deployment's small tasks (the DAG file only wires them).

Every function takes the run's params and returns small JSON-safe values for XCom. Nothing here logs
or returns a device's private key: it only ever travels from CreateKeysAndCertificate to Secrets Manager
(orchard.hooks.iot).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from orchard import naming
from orchard.errors import InputError
from orchard.settings import load_settings

log = logging.getLogger(__name__)

MAX_INSPECTED_MODEL_BYTES = 512 * 1024 * 1024
# Per-request prices (USD, us-east-1, public price pages, 2026-11-01): IoT Device Management remote
# actions (job executions), Secrets Manager secret-month, KMS asymmetric requests. Neo compiles for free.
IOT_JOB_EXECUTION_USD = 0.0036
SECRET_MONTH_USD = 0.40
HOURS_PER_MONTH = 730
KMS_ASYMMETRIC_REQUEST_USD = 0.15 / 10_000
EDGE_PRICES_AS_OF = "2026-11-01"


FOLDER_PARAMS = ("calibration_uri", "camera_images_uri")


def as_folder(uri: str) -> str:
    """An S3 prefix param as a folder (one trailing `/`; empty stays empty): `.../calibration` must never also
    read `.../calibration-old/`. The one place edge_deployment normalizes its prefix params."""
    uri = uri.strip()
    return uri.rstrip("/") + "/" if uri else ""


def with_folders(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, **{name: as_folder(params.get(name) or "") for name in FOLDER_PARAMS}}


def _hook(client_type: str):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    settings = load_settings()
    return AwsBaseHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region, client_type=client_type)


# ------------------------------------------------------------------------------------------ validate


def validate(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from orchard.edge_deployment.model_formats import ModelCheckError, check_archive, parse_input_shape

    settings = load_settings()
    params = with_folders(params)
    _check_conf(params)
    try:
        shapes = parse_input_shape(params["input_shape"])
    except ModelCheckError as error:
        raise InputError(f"input_shape: {error}") from None
    s3 = S3Hook(aws_conn_id=settings.aws_conn_id)
    bucket, _, key = params["model_uri"][5:].partition("/")
    if not s3.check_for_key(key, bucket):
        raise InputError(
            f"model_uri {params['model_uri']} does not exist (or is not readable): upload the "
            "model archive there, or point model_uri at an existing model.tar.gz"
        )
    size = s3.head_object(key, bucket)["ContentLength"]
    if size > MAX_INSPECTED_MODEL_BYTES:
        raise InputError(
            f"model_uri {params['model_uri']} is {size / 2**20:.0f} MiB: over the "
            f"{MAX_INSPECTED_MODEL_BYTES >> 20} MiB this check reads; edge models are small, "
            "is this the right archive?"
        )
    try:
        check = check_archive(s3.get_key(key, bucket).get()["Body"].read(), params["framework"], shapes)
    except ModelCheckError as error:
        raise InputError(f"{params['model_uri']}: {error}") from None
    _check_calibration(s3, params)
    _check_package_version(s3, params, settings, run_id)
    log.info(
        "model %s: %s, inputs %s, %d bytes",
        params["model_uri"],
        check.framework,
        check.inputs,
        check.size_bytes,
    )
    prepared = f"s3://{settings.artifacts_bucket}/" + naming.resource_name(
        "s3_prefix", "edge_deployment", run_id, "prepared"
    )
    return {
        "role_arn": settings.sagemaker_execution_role_arn,
        "input_shape": json.dumps(shapes),
        "processing_config": processing_config(params, json.dumps(shapes), prepared, run_id, settings),
        "prepared_model_uri": f"{prepared}model/model.tar.gz",
        "prepared_reference_uri": f"{prepared}reference/",
        "compile_output_uri": f"s3://{settings.artifacts_bucket}/"
        + naming.resource_name("s3_prefix", "edge_deployment", run_id, "compiled"),
        "artifacts_bucket": settings.artifacts_bucket,
        "data_bucket": settings.data_bucket,
        "model_files": check.files,
        "model_size_bytes": check.size_bytes,
    }


PREPARE_INSTANCE_TYPE = "ml.m5.large"
PREPARE_MAX_RUNTIME_S = 1800


def processing_config(
    params: dict[str, Any], input_shape: str, prepared: str, run_id: str, settings: Any
) -> dict:
    """The prepare job (include/edge_compiler/prepare.py): reference distribution, and the int8 model if asked."""

    def channel(name: str, uri: str) -> dict:
        return {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"/opt/ml/processing/input/{name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }

    def output(name: str) -> dict:
        return {
            "OutputName": name,
            "S3Output": {
                "S3Uri": f"{prepared}{name}/",
                "S3UploadMode": "EndOfJob",
                "LocalPath": f"/opt/ml/processing/output/{name}",
            },
        }

    return {
        "ProcessingJobName": naming.resource_name(
            "sagemaker_processing_job", "edge_deployment", run_id, "prepare"
        ),
        "RoleArn": settings.sagemaker_execution_role_arn,
        "AppSpecification": {
            "ImageUri": settings.image_uri("orchard/edge-compiler"),
            "ContainerEntrypoint": ["python3", "/opt/program/prepare.py"],
            "ContainerArguments": [
                "--input-shape",
                input_shape,
                "--quantization",
                params["quantization"],
                "--framework",
                params["framework"],
                "--root",
                "/opt/ml/processing",
                "--failure-file",
                "/opt/ml/output/failure",
                # for messages: an input error names the user's S3 objects
                "--model-uri",
                params["model_uri"],
                "--calibration-uri",
                params["calibration_uri"],
            ],
        },
        "ProcessingInputs": [
            channel("model", params["model_uri"]),
            channel("calibration", params["calibration_uri"]),
        ],
        "ProcessingOutputConfig": {"Outputs": [output("model"), output("reference")]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": PREPARE_INSTANCE_TYPE, "VolumeSizeInGB": 10}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": PREPARE_MAX_RUNTIME_S},
    }


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


def _check_calibration(s3: Any, params: dict[str, Any]) -> None:
    """The prepare job's first check, made here: the calibration folder holds .npy frames."""
    bucket, _, prefix = params["calibration_uri"][5:].partition("/")
    page = s3.get_conn().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
    if not any(item["Key"].endswith(".npy") for item in page.get("Contents", [])):
        raise InputError(
            f"calibration_uri {params['calibration_uri']} holds no .npy frames: upload the "
            "frames (numpy.save of uint8 HxWxC or CxHxW arrays) there, or point calibration_uri "
            "at them"
        )


def _check_package_version(s3: Any, params: dict[str, Any], settings: Any, run_id: str) -> None:
    """A package version names one content: an existing one is refused now, before the prepare job and Neo
    run (the package step would refuse it after them), unless force_repackage — or it is this run's own
    package (the run was cleared after packaging: its manifest names this run's compilation job)."""
    from orchard.operators.edge_package import PACKAGE_PREFIX, package_key

    if params.get("force_repackage") is True:
        return
    key = package_key(PACKAGE_PREFIX, params["model_name"], params["model_version"])
    if not s3.check_for_key(key, settings.artifacts_bucket):
        return
    manifest_key = key.rsplit("/", 1)[0] + "/manifest.json"
    try:
        source = json.loads(s3.read_key(manifest_key, settings.artifacts_bucket)).get("source") or {}
    except Exception:  # noqa: BLE001 - no readable manifest: it is not this run's
        source = {}
    own_compilation = naming.resource_name("sagemaker_compilation_job", "edge_deployment", run_id)
    if source.get("compilation_job") == own_compilation:
        return
    raise InputError(
        f"s3://{settings.artifacts_bucket}/{key} exists: version {params['model_version']} of "
        f"{params['model_name']} was already published. Bump model_version, or set "
        "force_repackage to replace it"
    )


def signing_key(alias: str) -> str:
    from orchard.operators.edge_package import ensure_signing_key

    return ensure_signing_key(_hook("kms").conn, alias)


# ------------------------------------------------------------------------------------------- fleet


def fleet_spec(
    params: dict[str, Any],
    signing_key_arn: str,
    package_prefix: str,
    capture_prefix: str,
    created_by: str = "",
):
    from orchard.hooks.iot import FleetSpec

    settings = load_settings()
    params = with_folders(params)
    return FleetSpec(
        fleet_name=params["fleet_name"],
        device_names=tuple(params["device_names"]),
        capture_bucket=settings.data_bucket,
        capture_prefix=f"{capture_prefix}/{params['fleet_name']}",
        package_bucket=settings.artifacts_bucket,
        package_prefix=package_prefix,
        signing_key_arn=signing_key_arn,
        capture={
            "buffer_size": params["capture_buffer_size"],
            "batch_size": params["capture_batch_size"],
            "push_period_seconds": params["capture_push_period_seconds"],
        },
        simulated=bool(params.get("simulated_devices")),
        camera_images_uri=params.get("camera_images_uri") or "",
        poll_seconds=float(min(params["poll_seconds"], 30)),
        permissions_boundary_arn=device_boundary_arn(settings.sagemaker_execution_role_arn),
        created_by=created_by,
    )


DEVICE_BOUNDARY_POLICY = "orchard-edge-device-boundary"


def device_boundary_arn(role_arn_in_account: str) -> str:
    """The edge devices' permissions boundary (a managed policy the account admin creates from
    include/iam/edge_deployment_device_boundary.json), in the account of the pipeline's roles."""
    partition, account = role_arn_in_account.split(":")[1], role_arn_in_account.split(":")[4]
    return f"arn:{partition}:iam::{account}:policy/{DEVICE_BOUNDARY_POLICY}"


def provision_fleet(
    params: dict[str, Any], signing_key_arn: str, package_prefix: str, capture_prefix: str, run_id: str = ""
) -> dict:
    """The fleet, made on the first run and kept: devices keep their certificates across runs (new ones only
    with rotate_certificates); someone else's thing group is deployed to as it is."""
    from orchard.hooks.iot import IotHook

    settings = load_settings()
    created_by = naming.resource_name("iot_job", "edge_deployment", run_id) if run_id else ""
    spec = fleet_spec(params, signing_key_arn, package_prefix, capture_prefix, created_by)
    hook = IotHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
    try:
        fleet = hook.ensure_fleet(spec, rotate_certificates=bool(params.get("rotate_certificates")))
    except ValueError as error:
        raise InputError(str(error)) from None
    if not fleet["managed"]:
        log.info(
            "thing group %s is not orchard's: deploying to its %d things as they are (nothing modified)",
            spec.fleet_name,
            len(fleet["devices"]),
        )
    for device in fleet["devices"]:
        if device.get("certificate_id"):
            log.info(
                "device %s: certificate %s... (%s), provisioning bundle in secret %s",
                device["thing_name"],
                device["certificate_id"][:12],
                device["certificate"],
                device["secret_name"],
            )
    return {**fleet, "capture_bucket": spec.capture_bucket, "capture_prefix": spec.capture_prefix}


# The tasks before the cleanup that return a value when they succeed: none missing = the run went through.
DEPLOY_PATH_TASKS = (
    "validate_model",
    "ensure_signing_key",
    "prepare",
    "compile",
    "package",
    "ensure_fleet",
    "deploy",
)


def cleanup_run(params: dict[str, Any], dag_id: str, run_id: str, failed: list[str]) -> list[str]:
    """The run's cleanup (a teardown: runs whenever the run ends, whatever failed; its failure fails the run).
    Everything is found by its deterministic orchard name, nothing is read from the tasks that made it:

    - the prepare processing job (every attempt) and the Neo compilation job, stopped if still running;
    - the run's IoT job, cancelled if IN_PROGRESS when the run failed (`failed`: the deploy-path tasks that
      did not succeed) or delete_fleet asks; after a successful rollout it stays open for offline devices;
    - the fleet: deleted with delete_fleet, or when the run failed and this run created it (its thing group
      records the creating run): a half-made or never-deployed fleet. A fleet an earlier run made, or one
      orchard did not create, stays.
    """
    from orchard.hooks.iot import IotHook, created_by
    from orchard.operators.sagemaker_job_retry import stop_all_attempts

    settings = load_settings()
    sagemaker = _hook("sagemaker").conn
    removed = [
        f"processing job {name} stopped"
        for name in stop_all_attempts(
            sagemaker,
            "Processing",
            naming.resource_name("sagemaker_processing_job", dag_id, run_id, "prepare"),
        )
    ]
    compilation = naming.resource_name("sagemaker_compilation_job", dag_id, run_id)
    try:
        status = sagemaker.describe_compilation_job(CompilationJobName=compilation)["CompilationJobStatus"]
    except sagemaker.exceptions.ResourceNotFound:
        status = None
    if status in ("INPROGRESS", "STARTING"):
        sagemaker.stop_compilation_job(CompilationJobName=compilation)
        removed.append(f"Neo compilation job {compilation} stopped")
    hook = IotHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
    job_id = naming.resource_name("iot_job", dag_id, run_id)
    if failed or params.get("delete_fleet"):
        try:
            job_status = hook.conn.describe_job(jobId=job_id)["job"]["status"]
        except hook.conn.exceptions.ResourceNotFoundException:
            job_status = None
        if job_status == "IN_PROGRESS":
            reason = "run failed" if failed else "fleet deleted"
            hook.conn.cancel_job(
                jobId=job_id,
                reasonCode=f"orchard-{reason.replace(' ', '-')}",
                comment=f"orchard: {reason}",
                force=True,
            )
            removed.append(f"IoT job {job_id} canceled ({reason})")
    try:
        group = hook.conn.describe_thing_group(thingGroupName=params["fleet_name"])
    except hook.conn.exceptions.ResourceNotFoundException:
        group = None
    made_here = group is not None and created_by(group.get("thingGroupProperties")) == job_id
    if params.get("delete_fleet") or (failed and made_here):
        if not params.get("delete_fleet"):
            log.info(
                "the run failed at %s: removing fleet %s, which this run created",
                ", ".join(failed),
                params["fleet_name"],
            )
        removed += hook.delete_fleet(fleet_spec(params, "", "", ""))
    else:
        log.info(
            "the fleet %s stays (things, certificates, secrets): delete_fleet=true deletes it",
            params["fleet_name"],
        )
    for line in removed:
        log.info("removed %s", line)
    return removed


# ----------------------------------------------------------------------------------------- monitor


def monitor_drift(
    package: dict[str, Any],
    deployment: dict[str, Any],
    params: dict[str, Any],
    capture_prefix: str,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from orchard.edge_deployment.drift import parse_records, summarise

    settings = load_settings()
    s3 = S3Hook(aws_conn_id=settings.aws_conn_id)
    if not package.get("reference_uri"):
        return {"devices": {}, "note": "no reference: run with calibration_uri to monitor drift"}
    started = _iot().describe_job(jobId=deployment["job_id"])["job"]["createdAt"]
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


def _iot():
    return _hook("iot").conn


# ------------------------------------------------------------------------------------------ report


def publish_report(ti: Any, dag_id: str, run_id: str, approval: dict[str, Any] | None = None) -> str:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from orchard.edge_deployment.approval import report_text
    from orchard.reports import Report

    settings = load_settings()
    s3 = S3Hook(aws_conn_id=settings.aws_conn_id)

    def pull(task_id, key="return_value"):
        return ti.xcom_pull(task_ids=task_id, key=key)

    compiled, package, fleet = pull("compile"), pull("package"), pull("ensure_fleet")
    deployment, drift, removed = pull("deploy"), pull("monitor"), pull("cleanup")
    outcomes = (deployment or {}).get("outcomes") or pull("deploy", "device_outcomes") or []
    report = Report("Edge deployment", dag_id, run_id)
    if package:
        report.add_text(_package_text(package))
        report.add_table(
            sorted(package["files"].items()),
            ["File", "Bytes"],
            title="Package contents (+ manifest.json and its signature manifest.json.sig)",
        )
        report.add_metrics(_model_metrics(package, compiled), title="Model")
    else:
        report.add_text("No package was published in this run (an earlier task failed: see its log).")
    if approved := report_text(approval):
        report.add_text(approved)
    if outcomes:
        report.add_table(
            [
                [
                    o["device"],
                    o["status"],
                    o["details"].get("predictions", ""),
                    o["details"].get("predictions_per_second", ""),
                    o["details"].get("captured", ""),
                    o["details"].get("reason", ""),
                ]
                for o in outcomes
            ],
            ["Device", "Outcome", "Predictions", "Predictions/s", "Captured", "Reason"],
            title="Deployment per device",
        )
    if drift and drift.get("devices"):
        _add_drift(report, s3, drift)
    kept = "Nothing removed: the fleet stays (delete_fleet was not asked)."
    lines = "\n".join(f"- {line}" for line in removed or [])
    report.add_text("## Fleet deletion\n\n" + (lines or kept))
    _add_prepare_cost(report, settings.region, pull("validate_model", "processing_config"))
    _add_links_and_cost(report, settings.region, compiled, fleet, deployment)
    return report.publish(s3, settings.reports_bucket, settings.reports_prefix)


PIPELINE_TASKS = (
    "validate_model",
    "ensure_signing_key",
    "compile",
    "package",
    "ensure_fleet",
    "deploy",
    "monitor",
    "cleanup",  # a failed cleanup may leave a job or a fleet: the report must not end the run green
)


def failed_tasks(ti: Any, task_ids: tuple[str, ...] = PIPELINE_TASKS) -> list[str]:
    """Those of `task_ids` that did not succeed (each returns a value when it does): the report runs
    anyway, then fails the run with them; the cleanup judges the deploy path (DEPLOY_PATH_TASKS) by them."""
    return [task for task in task_ids if ti.xcom_pull(task_ids=task) is None]


def _package_text(package: dict[str, Any]) -> str:
    return (
        f"## Package\n\n`{package['package_uri']}` — {package['size_bytes']:,} bytes, sha256 "
        f"`{package['sha256'][:16]}…`, variant **{package['variant']}**, manifest signed with "
        f"{package['signing_algorithm']} by `{package['signing_key_arn']}`."
    )


def _model_metrics(package: dict[str, Any], compiled: dict[str, Any] | None) -> dict[str, Any]:
    info, prepared = package.get("compiled") or {}, package.get("prepared") or {}
    metrics: dict[str, Any] = {
        "compiler": info.get("compiler"),
        "compile seconds": (compiled or {}).get("seconds"),
        "variant": package["variant"],
    }
    for name, size in (prepared.get("sizes_bytes") or {}).items():
        metrics[f"model size {name.replace('onnx_', '')} (ONNX bytes)"] = size
    metrics["compiled library (bytes)"] = (info.get("sizes_bytes") or {}).get("compiled.so")
    metrics["artifact layout"] = f"{info.get('layout')} (runtime {info.get('runtime')})"
    if prepared.get("int8_top1_agreement") is not None:
        metrics["int8 top-1 agreement with float32"] = prepared["int8_top1_agreement"]
        metrics["int8 agreement images"] = prepared.get("int8_agreement_images")
        metrics["int8 method"] = prepared.get("int8_method")
    if prepared.get("note"):
        metrics["note"] = prepared["note"]
    return metrics


def _add_drift(report: Any, s3: Any, drift: dict[str, Any]) -> None:
    from orchard.edge_deployment.drift import figures

    bucket, _, key = drift["drift_uri"][5:].partition("/")
    stored = json.loads(s3.read_key(key, bucket))
    report.add_table(
        [
            [
                d,
                s["records"],
                s["brightness_mean"],
                s["input_psi"],
                s["input_drift"],
                s["prediction_psi"],
                s["prediction_drift"],
            ]
            for d, s in drift["devices"].items()
        ],
        ["Device", "Captured", "Mean brightness", "Input PSI", "Input", "Prediction PSI", "Predictions"],
        title="Drift against the packaging-time reference",
    )
    report.add_metrics(
        {f"{d} input PSI": s["input_psi"] for d, s in drift["devices"].items()},
        title="Drift (input PSI per device; > 0.25 is drift)",
    )
    for name, figure in figures(stored["summary"], stored["reference"]).items():
        report.add_figure(name, figure, caption=name.replace("_", " "))


def _add_prepare_cost(report: Any, region: str, config: dict | None) -> None:
    """The prepare job is the run's one instance-billed job: its seconds × the ml.m5.large price."""
    if not config:
        return
    name = config["ProcessingJobName"]
    from botocore.exceptions import ClientError

    try:
        job = _hook("sagemaker").conn.describe_processing_job(ProcessingJobName=name)
    except ClientError as error:  # never started: nothing billed, nothing to link
        log.info("no prepare job to cost (%s)", error)
        return
    report.add_console_link("sagemaker_processing_job", name, region)
    if job.get("ProcessingStartTime") and job.get("ProcessingEndTime"):
        seconds = (job["ProcessingEndTime"] - job["ProcessingStartTime"]).total_seconds()
        cluster = config["ProcessingResources"]["ClusterConfig"]
        report.add_cost(
            [
                {
                    "job": name,
                    "service": "sagemaker",
                    "instance_type": cluster["InstanceType"],
                    "instance_count": cluster["InstanceCount"],
                    "billable_seconds": max(seconds, 1.0),
                }
            ],
            region,
        )


def _add_links_and_cost(
    report: Any, region: str, compiled: dict | None, fleet: dict | None, deployment: dict | None
) -> None:
    rows, total = [], 0.0
    if compiled:
        report.add_console_link("sagemaker_compilation_job", compiled["job_name"], region)
        rows.append(["Neo compilation", compiled["job_name"], "no charge", "0.0000"])
    if deployment:
        report.add_console_link("iot_job", deployment["job_id"], region)
        usd = IOT_JOB_EXECUTION_USD * len(deployment["outcomes"])
        total += usd
        rows.append(
            [
                "IoT job executions",
                f"{len(deployment['outcomes'])} × ${IOT_JOB_EXECUTION_USD}",
                "",
                f"{usd:.4f}",
            ]
        )
    if fleet:
        for device in fleet["devices"]:
            report.add_console_link("iot_thing", device["thing_name"], region)
        secrets = [d for d in fleet["devices"] if d.get("secret_name")]  # none in someone else's fleet
        usd = SECRET_MONTH_USD * len(secrets) / HOURS_PER_MONTH
        total += usd
        note = f"prorated: one hour each (the fleet stays: ${SECRET_MONTH_USD} a secret-month until deleted)"
        rows.append(["Secrets Manager", f"{len(secrets)} secrets", note, f"{usd:.4f}"])
        usd = KMS_ASYMMETRIC_REQUEST_USD * (1 + len(fleet["devices"]))
        total += usd
        rows.append(["KMS", "1 sign + 1 verify per device", "", f"{usd:.6f}"])
    rows.append(["**Total**", "", "", f"**{total:.4f}**"])
    report.cost_usd = round((report.cost_usd or 0.0) + total, 6)
    report.add_table(rows, ["Item", "What", "Note", "USD"], title="Estimated cost: per-request services")
    report.add_text(
        f"Per-request list prices (us-east-1) as of {EDGE_PRICES_AS_OF}; the prepare job above is the "
        "only instance-billed job. The signing key ($1/month) and S3 storage are not counted per run."
    )
