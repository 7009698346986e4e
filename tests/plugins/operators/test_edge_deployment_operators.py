"""edge_deployment's operators against the sandbox: compile failures surface their reason, a package
version is published once, a device refuses a tampered package, and model checks refuse bad input."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import time
from unittest import mock

import boto3
import pytest
from airflow.providers.common.compat.sdk import AirflowException

from local_aws.s3io import tar_gz
from orchard.edge_deployment.model_formats import ModelCheckError, check_archive, parse_input_shape
from orchard.hooks.iot import FleetSpec, IotHook
from orchard.operators.edge_package import SIGNING_ALGORITHM as SIGNING
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
        task_id="compile",
        job_name="bad-compile",
        role_arn="arn:aws:iam::123456789012:role/x",
        model_uri="s3://edge/bad.tar.gz",
        framework="ONNX",
        data_input_config='{"data": [1, 3, 32, 32]}',
        target="linux_x86_64",
        output_uri="s3://edge/out/",
        deferrable=False,
        waiter_delay=1,
        max_runtime_s=300,
    )
    with pytest.raises(
        AirflowException, match="ended FAILED: ClientError: model.onnx is not a valid ONNX model"
    ):
        operator.execute(context())


# ---------------------------------------------------------------------------------------- package


SANDBOX_META = json.dumps(
    {
        "Requirements": {"TargetDevice": "linux_x86_64"},
        "Runtime": "tvm-relax-vm",
        "Model": {"Inputs": [{"name": "data", "shape": [1, 3, 8, 8]}]},
    }
).encode()


def compiled_output(s3, files: dict[str, bytes] | None = None) -> str:
    files = files or {"compiled.so": b"\x7fELF", "compiled.meta": SANDBOX_META}
    s3.put_object(Bucket="edge", Key="compiled/m.tar.gz", Body=tar_gz(files))
    return "s3://edge/compiled/m.tar.gz"


def package_operator(uri: str, key: str, force: bool = False, job: str = "compile-1") -> EdgePackageOperator:
    return EdgePackageOperator(
        task_id="package",
        compiled_uri=uri,
        model_name="m",
        model_version="1.0.0",
        framework="ONNX",
        input_shape='{"data": [1, 3, 8, 8]}',
        target="linux_x86_64",
        bucket="edge",
        prefix="packages/",
        signing_key=key,
        force=force,
        source={"model_uri": "s3://edge/model.tar.gz", "compilation_job": job},
    )


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
    assert manifest["files"] == {
        "compiled.so": hashlib.sha256(b"\x7fELF").hexdigest(),
        "compiled.meta": hashlib.sha256(SANDBOX_META).hexdigest(),
    }
    assert manifest["artifacts"]["runtime"] == "tvm-relax-vm"
    assert manifest["artifacts"]["layout"] == "neo-sandbox"
    assert manifest["name"] == "m" and manifest["input_shape"] == {"data": [1, 3, 8, 8]}
    assert base64.b64decode(published["signature"]) == signature
    assert kms.verify(
        KeyId=key,
        Message=hashlib.sha256(manifest_bytes).digest(),
        MessageType="DIGEST",
        Signature=signature,
        SigningAlgorithm=published["signing_algorithm"],
    )["SignatureValid"]

    # A retry of the same run (same compilation) finds its package; another run's compilation is refused.
    assert package_operator(uri, key).execute(context()) == published
    with pytest.raises(
        AirflowException, match="already published. Bump model_version, or set force_repackage"
    ):
        package_operator(uri, key, job="compile-2").execute(context())
    forced = package_operator(uri, key, force=True, job="compile-2").execute(context())
    assert forced["package_uri"] == published["package_uri"] and forced["sha256"] != published["sha256"]


def test_real_neo_output_for_a_dlr_target_is_packaged_and_described_as_dlr(s3):
    """Issue 12: real Neo writes compiled.so/.params/_model.json/.meta for DLR targets and no compiled.json;
    the package must describe what is there (today's code pops the orchard-only compiled.json: KeyError)."""
    kms = boto3.client("kms")
    key = ensure_signing_key(kms, "alias/test-signing")
    neo = {
        "compiled.so": b"\x7fELF lib",
        "compiled.params": b"params",
        "compiled_model.json": b'{"nodes": []}',
        "compiled.meta": json.dumps({"Requirements": {"TargetDevice": "rasp4b"}}).encode(),
    }
    published = package_operator(compiled_output(s3, neo), key).execute(context())
    manifest = json.loads(s3.get_object(Bucket="edge", Key="packages/m/1.0.0/manifest.json")["Body"].read())
    assert set(manifest["files"]) == set(neo)
    assert manifest["artifacts"]["layout"] == "neo-dlr" and manifest["artifacts"]["runtime"] == "dlr"
    assert manifest["artifacts"]["meta"] == {"Requirements": {"TargetDevice": "rasp4b"}}
    assert published["compiled"]["runtime"] == "dlr"
    assert published["compiled"]["sizes_bytes"]["compiled.so"] == 8
    assert published["variant"] == "float32"


# ------------------------------------------------------------------------------------ deployment


def test_a_simulated_device_refuses_a_tampered_package(s3):
    kms = boto3.client("kms")
    key = ensure_signing_key(kms, "alias/test-signing")
    published = package_operator(compiled_output(s3), key).execute(context())
    # Someone with write access to the bucket swaps the package for one of their own.
    s3.put_object(Bucket="edge", Key="packages/m/1.0.0/package.tar.gz", Body=tar_gz({"compiled.so": b"evil"}))
    spec = FleetSpec(
        "tamper-fleet",
        ("tamper-device",),
        "orchard-data",
        "captures/tamper-fleet",
        "edge",
        "packages/",
        key,
        {"buffer_size": 4, "batch_size": 2, "push_period_seconds": 1},
        simulated=True,
        poll_seconds=0.5,
    )
    fleet = IotHook(aws_conn_id="aws_default").ensure_fleet(spec)
    deploy = IotDeployOperator(
        task_id="deploy",
        job_id="tampered-deploy",
        thing_group_arn=fleet["thing_group_arn"],
        package=published,
        deferrable=False,
        waiter_delay=1,
        rollout_window_minutes=2,
    )
    try:
        with pytest.raises(
            AirflowException, match="1 of 1 devices did not succeed: tamper-device FAILED package sha256"
        ):
            deploy.execute(context())
    finally:
        IotHook(aws_conn_id="aws_default").delete_fleet(spec)
    assert "PRIVATE KEY" not in json.dumps(fleet)


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/k"


def fleet_spec(name: str, devices: tuple[str, ...]) -> FleetSpec:
    return FleetSpec(
        name,
        devices,
        "orchard-data",
        f"captures/{name}",
        "edge",
        "packages/",
        KEY_ARN,
        {"buffer_size": 4, "batch_size": 2, "push_period_seconds": 1},
    )


def test_a_fleet_orchard_did_not_create_is_deployed_to_and_never_modified(aws):
    """Issue 12: hooks/iot.py detached, deactivated and deleted every certificate of a thing without an
    orchard secret, and delete_fleet removed things and group it never made."""
    iot = boto3.client("iot")
    iot.create_thing_group(thingGroupName="plant-cameras")
    iot.create_thing(thingName="cam-7", attributePayload={"attributes": {"site": "north"}})
    iot.add_thing_to_thing_group(thingGroupName="plant-cameras", thingName="cam-7")
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="cam-7", principal=cert["certificateArn"])
    hook = IotHook(aws_conn_id="aws_default")
    spec = fleet_spec("plant-cameras", ("cam-7",))

    fleet = hook.ensure_fleet(spec)
    assert fleet["managed"] is False and [d["thing_name"] for d in fleet["devices"]] == ["cam-7"]
    assert hook.delete_fleet(spec) == ["nothing: thing group plant-cameras is not orchard's (left as it is)"]
    assert iot.list_thing_principals(thingName="cam-7")["principals"] == [cert["certificateArn"]]
    described = iot.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]
    assert described["status"] == "ACTIVE"
    assert iot.describe_thing(thingName="cam-7")["attributes"] == {"site": "north"}
    assert iot.list_policies()["policies"] == []
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []

    # A foreign thing named in an orchard fleet is refused, not taken over.
    with pytest.raises(ValueError, match="thing cam-7 exists and is not orchard's"):
        hook.ensure_fleet(fleet_spec("orchard-fleet", ("cam-7",)))
    assert iot.list_thing_principals(thingName="cam-7")["principals"] == [cert["certificateArn"]]


def test_deploy_judges_the_rollout_policy_while_an_offline_device_stays_queued(aws):
    """Issue 12: QUEUED executions of offline devices never time out on AWS; the deploy task gave up on
    them (its waiter ran out). Now it creates the job with rollout, abort and timeout configurations and
    succeeds when min_success_percent of the fleet succeeded within the rollout window."""
    import threading

    hook = IotHook(aws_conn_id="aws_default")
    fleet = hook.ensure_fleet(fleet_spec("rollout-fleet", ("online-cam", "offline-cam")))
    package = {
        "model_name": "m",
        "version": "1",
        "variant": "float32",
        "package_uri": "s3://edge/p.tar.gz",
        "sha256": "0" * 64,
        "signature": "",
        "signing_key_arn": "k",
        "signing_algorithm": SIGNING,
    }
    jobs_data = boto3.client("iot-jobs-data")

    def online_device(job_id: str) -> None:  # one camera is online: it takes the job and succeeds
        for _ in range(100):
            if jobs_data.start_next_pending_job_execution(thingName="online-cam").get("execution"):
                jobs_data.update_job_execution(jobId=job_id, thingName="online-cam", status="SUCCEEDED")
                return
            time.sleep(0.1)

    def deploy(job_id: str, min_success: float) -> dict:
        device = threading.Thread(target=online_device, args=(job_id,))
        device.start()
        try:
            return IotDeployOperator(
                task_id="deploy",
                job_id=job_id,
                thing_group_arn=fleet["thing_group_arn"],
                package=package,
                deferrable=False,
                waiter_delay=1,
                rollout_window_minutes=0.1,
                min_success_percent=min_success,
                max_per_minute=10,
                abort_failure_percent=50,
            ).execute(context())
        finally:
            device.join()

    result = deploy("rollout-half", 50)
    assert result["succeeded"] == ["online-cam"] and result["pending"] == ["offline-cam"]
    assert result["failed"] == []
    job = boto3.client("iot").describe_job(jobId="rollout-half")["job"]
    assert job["status"] == "IN_PROGRESS"  # left open: the offline camera gets the model when it comes online
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 10}
    assert job["abortConfig"]["criteriaList"] == [
        {
            "failureType": "ALL",
            "action": "CANCEL",
            "thresholdPercentage": 50.0,
            "minNumberOfExecutedThings": 1,
        }
    ]
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    refused = r"succeeded on 1 of 2 devices \(50%\), under min_success_percent 100.*offline-cam QUEUED"
    with pytest.raises(AirflowException, match=refused):
        deploy("rollout-all", 100)


def test_a_neo_client_error_is_an_input_error_and_a_person_stop_stops_the_compilation(s3, monkeypatch):
    from orchard.errors import InputError
    from orchard.operators.neo import stop_compilation
    from orchard.triggers.neo import NeoCompilationTrigger

    s3.put_object(Bucket="edge", Key="bad.tar.gz", Body=tar_gz({"model.onnx": b"not onnx"}))
    operator = NeoCompilationOperator(
        task_id="compile",
        job_name="bad-compile",
        role_arn="arn:aws:iam::123456789012:role/x",
        model_uri="s3://edge/bad.tar.gz",
        framework="ONNX",
        data_input_config='{"data": [1, 3, 32, 32]}',
        target="linux_x86_64",
        output_uri="s3://edge/out/",
        deferrable=False,
        waiter_delay=1,
        max_runtime_s=300,
    )
    with pytest.raises(InputError, match="not retried"):
        operator.execute(context())
    assert stop_compilation(boto3.client("sagemaker"), "bad-compile") is False  # ended: nothing to stop
    assert stop_compilation(boto3.client("sagemaker"), "never-started") is False
    trigger = NeoCompilationTrigger(job_name="never-started", waiter_delay=1, waiter_max_attempts=1000)
    import asyncio

    asyncio.run(trigger.on_kill())  # a job that is gone: nothing to stop, no error

    async def first_event():
        return await asyncio.wait_for(trigger.run().__anext__(), timeout=20)

    try:  # a vanished job ends the wait at the first poll
        event = asyncio.run(first_event()).payload
    except Exception as error:  # noqa: BLE001
        event = {"status": "error", "message": str(error)}
    assert event["status"] != "success" and "ResourceNotFound" in str(event)
