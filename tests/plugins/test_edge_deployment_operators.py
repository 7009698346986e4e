"""edge_deployment's operators against the sandbox: compile failures surface their reason, a package
version is published once, a device refuses a tampered package, and model checks refuse bad input."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from unittest import mock

import boto3
import pytest
from airflow.providers.common.compat.sdk import AirflowException

from local_aws.s3io import tar_gz
from orchard.hooks.iot import FleetSpec, IotHook
from orchard.edge_deployment.model_formats import ModelCheckError, check_archive, parse_input_shape
from orchard.operators.edge_package import EdgePackageOperator, ensure_signing_key
from orchard.operators.iot import IotDeployOperator
from orchard.operators.neo import NeoCompilationOperator, target_output_config


def context() -> dict:
    return {"ti": mock.MagicMock()}


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    for bucket in ("edge", "orchard-data", "orchard-artifacts"):
        client.create_bucket(Bucket=bucket)
    return client


# ------------------------------------------------------------------------------------ model checks


def test_model_checks_refuse_wrong_framework_shape_and_archive():
    onnx_archive = tar_gz({"model.onnx": b"\x08\x08"})  # ir_version only: no graph
    with pytest.raises(ModelCheckError, match="not an ONNX model"):
        check_archive(onnx_archive, "ONNX", {"data": [1, 3, 8, 8]})
    with pytest.raises(ModelCheckError, match="one .tflite file"):
        check_archive(onnx_archive, "TFLITE", {"data": [1, 3, 8, 8]})
    with pytest.raises(ModelCheckError, match="not a .tar.gz"):
        check_archive(b"plain bytes", "ONNX", {"data": [1]})
    darknet = tar_gz({"yolo.cfg": b"[net]\nwidth=416\nheight=416\nchannels=3\n", "yolo.weights": b"w"})
    assert check_archive(darknet, "DARKNET", {"data": [1, 3, 416, 416]}).inputs == {"data": [1, 3, 416, 416]}
    with pytest.raises(ModelCheckError, match=r"expected \[1, 3, 416, 416\]"):
        check_archive(darknet, "DARKNET", {"data": [1, 3, 224, 224]})
    with pytest.raises(ModelCheckError, match="positive integers"):
        parse_input_shape('{"data": [1, -3]}')
    assert target_output_config("ml_c5") == {"TargetDevice": "ml_c5"}
    assert target_output_config("linux_arm64") == {"TargetPlatform": {"Os": "LINUX", "Arch": "ARM64"}}


# ---------------------------------------------------------------------------------------- compile


def test_compile_failure_is_surfaced_with_the_jobs_reason(s3):
    s3.put_object(Bucket="edge", Key="bad.tar.gz", Body=tar_gz({"model.onnx": b"not onnx"}))
    operator = NeoCompilationOperator(
        task_id="compile", job_name="bad-compile", role_arn="arn:aws:iam::123456789012:role/x",
        model_uri="s3://edge/bad.tar.gz", framework="ONNX", data_input_config='{"data": [1, 3, 32, 32]}',
        target="linux_x86_64", output_uri="s3://edge/out/", deferrable=False, waiter_delay=1, max_runtime_s=300)
    with pytest.raises(AirflowException, match="ended FAILED: ClientError: model.onnx is not a valid ONNX model"):
        operator.execute(context())


# ---------------------------------------------------------------------------------------- package


SANDBOX_META = json.dumps({"Requirements": {"TargetDevice": "linux_x86_64"}, "Runtime": "tvm-relax-vm",
                           "Model": {"Inputs": [{"name": "data", "shape": [1, 3, 8, 8]}]}}).encode()


def compiled_output(s3, files: dict[str, bytes] | None = None) -> str:
    files = files or {"compiled.so": b"\x7fELF", "compiled.meta": SANDBOX_META}
    s3.put_object(Bucket="edge", Key="compiled/m.tar.gz", Body=tar_gz(files))
    return "s3://edge/compiled/m.tar.gz"


def package_operator(uri: str, key: str, force: bool = False, job: str = "compile-1") -> EdgePackageOperator:
    return EdgePackageOperator(task_id="package", compiled_uri=uri, model_name="m", model_version="1.0.0",
                               framework="ONNX", input_shape='{"data": [1, 3, 8, 8]}', target="linux_x86_64",
                               bucket="edge", prefix="packages/", signing_key=key, force=force,
                               source={"model_uri": "s3://edge/model.tar.gz", "compilation_job": job})


def test_package_is_signed_and_a_version_is_published_once_unless_forced(s3):
    kms = boto3.client("kms")
    key = ensure_signing_key(kms, "alias/test-signing")
    uri = compiled_output(s3)
    published = package_operator(uri, key).execute(context())

    archive = s3.get_object(Bucket="edge", Key="packages/m/1.0.0/package.tar.gz")["Body"].read()
    assert hashlib.sha256(archive).hexdigest() == published["sha256"]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest_bytes = tar.extractfile("manifest.json").read()
        signature = tar.extractfile("manifest.json.sig").read()
    manifest = json.loads(manifest_bytes)
    assert manifest["files"] == {"compiled.so": hashlib.sha256(b"\x7fELF").hexdigest(),
                                 "compiled.meta": hashlib.sha256(SANDBOX_META).hexdigest()}
    assert manifest["artifacts"]["runtime"] == "tvm-relax-vm" and manifest["artifacts"]["layout"] == "neo-sandbox"
    assert manifest["name"] == "m" and manifest["input_shape"] == {"data": [1, 3, 8, 8]}
    assert base64.b64decode(published["signature"]) == signature
    assert kms.verify(KeyId=key, Message=hashlib.sha256(manifest_bytes).digest(), MessageType="DIGEST",
                      Signature=signature, SigningAlgorithm=published["signing_algorithm"])["SignatureValid"]

    # A retry of the same run (same compilation) finds its package; another run's compilation is refused.
    assert package_operator(uri, key).execute(context()) == published
    with pytest.raises(AirflowException, match="already published. Bump model_version, or set force_repackage"):
        package_operator(uri, key, job="compile-2").execute(context())
    forced = package_operator(uri, key, force=True, job="compile-2").execute(context())
    assert forced["package_uri"] == published["package_uri"] and forced["sha256"] != published["sha256"]


def test_real_neo_output_for_a_dlr_target_is_packaged_and_described_as_dlr(s3):
    """Issue 12: real Neo writes compiled.so/.params/_model.json/.meta for DLR targets and no compiled.json;
    the package must describe what is there (today's code pops the orchard-only compiled.json: KeyError)."""
    kms = boto3.client("kms")
    key = ensure_signing_key(kms, "alias/test-signing")
    neo = {"compiled.so": b"\x7fELF lib", "compiled.params": b"params", "compiled_model.json": b'{"nodes": []}',
           "compiled.meta": json.dumps({"Requirements": {"TargetDevice": "rasp4b"}}).encode()}
    published = package_operator(compiled_output(s3, neo), key).execute(context())
    manifest = json.loads(s3.get_object(Bucket="edge", Key="packages/m/1.0.0/manifest.json")["Body"].read())
    assert set(manifest["files"]) == set(neo)
    assert manifest["artifacts"]["layout"] == "neo-dlr" and manifest["artifacts"]["runtime"] == "dlr"
    assert manifest["artifacts"]["meta"] == {"Requirements": {"TargetDevice": "rasp4b"}}
    assert published["compiled"]["runtime"] == "dlr" and published["compiled"]["sizes_bytes"]["compiled.so"] == 8
    assert published["variant"] == "float32"


# ------------------------------------------------------------------------------------ deployment


def test_a_simulated_device_refuses_a_tampered_package(s3):
    kms = boto3.client("kms")
    key = ensure_signing_key(kms, "alias/test-signing")
    published = package_operator(compiled_output(s3), key).execute(context())
    # Someone with write access to the bucket swaps the package for one of their own.
    s3.put_object(Bucket="edge", Key="packages/m/1.0.0/package.tar.gz", Body=tar_gz({"compiled.so": b"evil"}))
    spec = FleetSpec("tamper-fleet", ("tamper-device",), "orchard-data", "captures/tamper-fleet", "edge", "packages/",
                     key, {"buffer_size": 4, "batch_size": 2, "push_period_seconds": 1}, simulated=True, poll_seconds=0.5)
    fleet = IotHook(aws_conn_id="aws_default").ensure_fleet(spec)
    deploy = IotDeployOperator(task_id="deploy", job_id="tampered-deploy", thing_group_arn=fleet["thing_group_arn"],
                               package=published, deferrable=False, waiter_delay=1, waiter_max_attempts=120)
    try:
        with pytest.raises(AirflowException, match="1 of 1 devices did not succeed: tamper-device FAILED package sha256"):
            deploy.execute(context())
    finally:
        IotHook(aws_conn_id="aws_default").delete_fleet(spec)
    assert "PRIVATE KEY" not in json.dumps(fleet)


# ------------------------------------------------------------------------------ validate_model task


def demo_params(**overrides) -> dict:
    from local_aws.demo_data.edge_deployment import DEVICES

    params = {"model_uri": "s3://orchard-data/m/model.tar.gz", "framework": "ONNX", "input_shape": '{"data": [1, 3, 32, 32]}',
              "quantization": "none", "calibration_uri": "s3://orchard-data/m/calibration/", "simulated_devices": False, "camera_images_uri": "",
              "device_names": list(DEVICES), "capture_batch_size": 10, "capture_buffer_size": 30}
    return {**params, **overrides}


def test_validate_model_refuses_bad_input_before_any_compilation(s3, tmp_path):
    from orchard.edge_deployment.tasks import InvalidRequest, validate

    from local_aws.demo_data import edge_deployment as demo

    model = demo.generate(tmp_path, per_device=1, calibration=1) / "model.tar.gz"
    s3.upload_file(str(model), "orchard-data", "m/model.tar.gz")
    checked = validate(demo_params(), "manual__2026-11-21T10:00:00+00:00")
    assert checked["model_files"] == ["model.onnx"]
    processing = checked["processing_config"]
    assert processing["ProcessingJobName"].startswith("edge-deployment-manual-20261121t100000")
    assert processing["AppSpecification"]["ContainerArguments"][3:6] == ["none", "--framework", "ONNX"]

    refusals = {
        "does not fit the model's [1, 3, 32, 32]": demo_params(input_shape='{"data": [1, 3, 64, 64]}'),
        "takes ['data']": demo_params(input_shape='{"images": [1, 3, 32, 32]}'),
        "does not exist": demo_params(model_uri="s3://orchard-data/m/missing.tar.gz"),
        "one .pt/.pth file": demo_params(framework="PYTORCH"),
        "calibration_uri is needed": demo_params(calibration_uri=""),
        "quantizes ONNX models": demo_params(framework="PYTORCH", quantization="int8"),
        "needs camera_images_uri": demo_params(simulated_devices=True),
        "repeats a name": demo_params(device_names=["a", "a"]),
        "exceeds capture_buffer_size": demo_params(capture_batch_size=50),
    }
    for message, params in refusals.items():
        with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
            validate(params, "manual__2026-11-21T10:00:00+00:00")
    assert boto3.client("sagemaker").list_compilation_jobs()["CompilationJobSummaries"] == []
