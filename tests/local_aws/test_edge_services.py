"""The sandbox's edge services: Neo compilation jobs (TVM), IoT job lifecycles, the IoT Jobs data plane
and the credentials provider."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
import urllib.error
import urllib.request

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from local_aws.demo_data import edge_deployment as demo
from local_aws.s3io import tar_gz
from tests.local_aws.polling import watch_states

ROLE = "arn:aws:iam::123456789012:role/orchard-sagemaker-execution"
SHAPE = '{"data": [1, 3, 32, 32]}'


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    return demo.generate(tmp_path_factory.mktemp("edge-demo"), per_device=2, calibration=8)


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="edge")
    return s3


def compile_job(sm, name: str, model_uri: str, target: dict | None = None) -> None:
    output = {
        "S3OutputLocation": "s3://edge/compiled/",
        **(target or {"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}),
    }
    sm.create_compilation_job(
        CompilationJobName=name,
        RoleArn=ROLE,
        InputConfig={"S3Uri": model_uri, "DataInputConfig": SHAPE, "Framework": "ONNX"},
        OutputConfig=output,
        StoppingCondition={"MaxRuntimeInSeconds": 300},
    )


def status_of(sm, name: str):
    return lambda: sm.describe_compilation_job(CompilationJobName=name)["CompilationJobStatus"]


def test_compilation_job_really_compiles_with_tvm(bucket, demo_model):
    bucket.upload_file(str(demo_model / "model.tar.gz"), "edge", "models/model.tar.gz")
    sm = boto3.client("sagemaker")
    compile_job(sm, "neo-ok", "s3://edge/models/model.tar.gz")

    assert watch_states(status_of(sm, "neo-ok"), {"COMPLETED", "FAILED"}, timeout_s=300) == [
        "INPROGRESS",
        "COMPLETED",
    ]
    job = sm.describe_compilation_job(CompilationJobName="neo-ok")
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://edge/compiled/model-linux_x86_64.tar.gz"
    archive = bucket.get_object(Bucket="edge", Key="compiled/model-linux_x86_64.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
        metadata = json.load(tar.extractfile("compiled.meta"))
        library = tar.extractfile("compiled.so").read()
    # Neo's names for a DLR target (compiled.so + compiled.meta); compiled_model.json and compiled.params
    # cannot be written by TVM's current release (docs/sandbox.md §8), and no orchard-only file is added.
    assert names == {"compiled.so", "compiled.meta"}
    assert library[:4] == b"\x7fELF"  # a real shared library, built by TVM and linked for x86_64
    assert metadata["Compiler"]["name"] == "apache-tvm" and metadata["Model"]["Outputs"][0]["shape"] == [1, 4]
    assert metadata["Model"]["Inputs"] == [{"name": "data", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert metadata["Runtime"] == "tvm-relax-vm" and not metadata["Quantized"]
    assert json.loads(job["DerivedInformation"]["DerivedDataInputConfig"]) == {"data": [1, 3, 32, 32]}
    assert len(job["ModelDigests"]["ArtifactDigest"]) == 64
    logs = boto3.client("logs").get_log_events(
        logGroupName="/aws/sagemaker/CompilationJobs", logStreamName="neo-ok"
    )
    assert any("with Apache TVM" in e["message"] for e in logs["events"])


def test_a_bad_model_ends_failed_with_the_reason(bucket):
    bad_model = tar_gz({"model.onnx": b"this is not an onnx model"})
    bucket.put_object(Bucket="edge", Key="models/bad.tar.gz", Body=bad_model)
    sm = boto3.client("sagemaker")
    compile_job(sm, "neo-bad", "s3://edge/models/bad.tar.gz")

    assert watch_states(status_of(sm, "neo-bad"), {"COMPLETED", "FAILED"}, timeout_s=300)[-1] == "FAILED"
    reason = sm.describe_compilation_job(CompilationJobName="neo-bad")["FailureReason"]
    assert reason.startswith("ClientError: model.onnx is not a valid ONNX model")


def test_a_target_without_its_cross_linker_fails_with_the_reason(bucket, demo_model):
    bucket.upload_file(str(demo_model / "model.tar.gz"), "edge", "models/model.tar.gz")
    sm = boto3.client("sagemaker")
    compile_job(sm, "neo-arm", "s3://edge/models/model.tar.gz", target={"TargetDevice": "rasp4b"})
    watch_states(status_of(sm, "neo-arm"), {"COMPLETED", "FAILED"}, timeout_s=300)
    job = sm.describe_compilation_job(CompilationJobName="neo-arm")
    # This machine may or may not have an aarch64 cross linker: either it compiles, or it says what is missing.
    assert job["CompilationJobStatus"] == "COMPLETED" or "aarch64-linux-gnu-gcc" in job["FailureReason"]


# ------------------------------------------------------------------------------------------ IoT


@pytest.fixture
def fleet(aws, monkeypatch):
    """Two things in a group, one certificate attached to the first (no simulated device runs)."""
    iot = boto3.client("iot")
    group_arn = iot.create_thing_group(thingGroupName="fleet")["thingGroupArn"]
    for name in ("dev-1", "dev-2"):
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName="fleet", thingName=name)
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="dev-1", principal=created["certificateArn"])
    return iot, group_arn, created


def test_iot_job_on_a_thing_group_runs_one_execution_per_device_until_all_end(fleet):
    iot, group_arn, _ = fleet
    jobs_data = boto3.client("iot-jobs-data")
    iot.create_job(jobId="deploy-1", targets=[group_arn], document=json.dumps({"operation": "x"}))
    assert iot.describe_job(jobId="deploy-1")["job"]["status"] == "IN_PROGRESS"
    assert sorted(
        s["thingArn"].rsplit("/", 1)[-1]
        for s in iot.list_job_executions_for_job(jobId="deploy-1")["executionSummaries"]
    ) == ["dev-1", "dev-2"]

    started = jobs_data.start_next_pending_job_execution(thingName="dev-1")["execution"]
    assert started["jobId"] == "deploy-1" and json.loads(started["jobDocument"]) == {"operation": "x"}
    assert started["status"] == "IN_PROGRESS"
    jobs_data.update_job_execution(
        jobId="deploy-1", thingName="dev-1", status="SUCCEEDED", statusDetails={"predictions": "3"}
    )
    assert iot.describe_job(jobId="deploy-1")["job"]["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert iot.describe_job(jobId="deploy-1")["job"]["status"] == "IN_PROGRESS"  # dev-2 has not answered

    jobs_data.start_next_pending_job_execution(thingName="dev-2")
    jobs_data.update_job_execution(
        jobId="deploy-1", thingName="dev-2", status="FAILED", statusDetails={"reason": "bad"}
    )
    job = iot.describe_job(jobId="deploy-1")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfFailedThings"] == 1
    described = jobs_data.describe_job_execution(jobId="deploy-1", thingName="dev-1")["execution"]
    assert described["status"] == "SUCCEEDED" and described["statusDetails"] == {"predictions": "3"}
    assert jobs_data.start_next_pending_job_execution(thingName="dev-1").get("execution") is None
    with pytest.raises(jobs_data.exceptions.InvalidStateTransitionException):
        jobs_data.update_job_execution(jobId="deploy-1", thingName="dev-1", status="IN_PROGRESS")


def test_cancelling_a_job_cancels_its_queued_executions(fleet):
    iot, group_arn, _ = fleet
    iot.create_job(jobId="deploy-2", targets=[group_arn], document="{}")
    iot.cancel_job(jobId="deploy-2", force=True)
    statuses = {
        s["jobExecutionSummary"]["status"]
        for s in iot.list_job_executions_for_job(jobId="deploy-2")["executionSummaries"]
    }
    assert statuses == {"CANCELED"} and iot.describe_job(jobId="deploy-2")["job"]["status"] == "CANCELED"


def credentials_request(
    sandbox_url: str, alias: str, thing: str, certificate_pem: str, private_key_pem: str | None
):
    signed_at = str(int(time.time()))
    headers = {
        "x-amzn-iot-thingname": thing,
        "x-orchard-client-certificate": base64.b64encode(certificate_pem.encode()).decode(),
        "x-orchard-signed-at": signed_at,
    }
    if private_key_pem:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        headers["x-orchard-signature"] = base64.b64encode(
            key.sign(f"{thing}|{signed_at}".encode(), padding.PKCS1v15(), hashes.SHA256())
        ).decode()
    request = urllib.request.Request(f"{sandbox_url}/role-aliases/{alias}/credentials", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_credentials_provider_trades_a_certificate_for_the_role_alias_credentials(fleet, sandbox):
    iot, _, created = fleet
    alias_arn = iot.create_role_alias(roleAlias="edge", roleArn="arn:aws:iam::123456789012:role/edge-device")[
        "roleAliasArn"
    ]
    pem, key = created["certificatePem"], created["keyPair"]["PrivateKey"]

    status, body = credentials_request(sandbox.url, "edge", "dev-1", pem, key)
    assert status == 403 and "iot:AssumeRoleWithCertificate" in body["message"]  # no policy yet

    iot.create_policy(
        policyName="edge",
        policyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": alias_arn}
                ],
            }
        ),
    )
    iot.attach_policy(policyName="edge", target=created["certificateArn"])
    status, body = credentials_request(sandbox.url, "edge", "dev-1", pem, key)
    assert status == 200 and body["credentials"]["accessKeyId"].startswith("ASIA")
    identity = boto3.client(
        "sts",
        aws_access_key_id=body["credentials"]["accessKeyId"],
        aws_secret_access_key=body["credentials"]["secretAccessKey"],
        aws_session_token=body["credentials"]["sessionToken"],
    ).get_caller_identity()
    assert identity["Arn"].endswith(":assumed-role/edge-device/dev-1")

    assert credentials_request(sandbox.url, "edge", "dev-1", pem, None)[0] == 403  # no proof of the key
    assert (
        credentials_request(sandbox.url, "edge", "dev-2", pem, key)[0] == 403
    )  # not this thing's certificate
    iot.update_certificate(certificateId=created["certificateId"], newStatus="INACTIVE")
    assert credentials_request(sandbox.url, "edge", "dev-1", pem, key)[0] == 403  # revoked


def test_stop_compilation_job_ends_it_stopped(bucket, demo_model):
    bucket.upload_file(str(demo_model / "model.tar.gz"), "edge", "models/model.tar.gz")
    sm = boto3.client("sagemaker")
    compile_job(sm, "neo-stop", "s3://edge/models/model.tar.gz")
    sm.stop_compilation_job(
        CompilationJobName="neo-stop"
    )  # while the compiler still starts (TVM loads in ~1 s)
    seen = watch_states(status_of(sm, "neo-stop"), {"COMPLETED", "FAILED", "STOPPED"}, timeout_s=120)
    assert seen[-1] == "STOPPED" and not sm.describe_compilation_job(CompilationJobName="neo-stop").get(
        "ModelArtifacts"
    )


def test_an_execution_in_progress_past_its_timeout_times_out(fleet):
    import datetime

    from local_aws import iot as sandbox_iot

    iot, group_arn, _ = fleet
    iot.create_job(
        jobId="deploy-3", targets=[group_arn], document="{}", timeoutConfig={"inProgressTimeoutInMinutes": 1}
    )
    jobs_data = boto3.client("iot-jobs-data")
    for thing in ("dev-1", "dev-2"):
        jobs_data.start_next_pending_job_execution(thingName=thing)
    jobs_data.update_job_execution(jobId="deploy-3", thingName="dev-2", status="SUCCEEDED")
    execution = sandbox_iot.backend().job_executions[("deploy-3", "dev-1")]
    execution.started_at -= datetime.timedelta(minutes=2)  # dev-1 hung two minutes ago

    job = iot.describe_job(jobId="deploy-3")["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfTimedOutThings"] == 1


def test_an_accelerator_target_fails_with_the_reason(bucket, demo_model):
    bucket.upload_file(str(demo_model / "model.tar.gz"), "edge", "models/model.tar.gz")
    sm = boto3.client("sagemaker")
    compile_job(
        sm,
        "neo-gpu",
        "s3://edge/models/model.tar.gz",
        target={"TargetPlatform": {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"}},
    )
    assert watch_states(status_of(sm, "neo-gpu"), {"COMPLETED", "FAILED"}, timeout_s=300)[-1] == "FAILED"
    assert (
        "Accelerator 'NVIDIA': only CPU code is generated here"
        in sm.describe_compilation_job(CompilationJobName="neo-gpu")["FailureReason"]
    )


def test_abort_config_cancels_the_job_and_its_queued_executions_when_failures_reach_the_threshold(fleet):
    """AbortCriteria (AWS IoT API reference): once minNumberOfExecutedThings devices got the job, a share of
    failures >= thresholdPercentage cancels it; the sandbox ignored abortConfig."""
    iot, group_arn, _ = fleet
    jobs_data = boto3.client("iot-jobs-data")
    iot.create_job(
        jobId="deploy-abort",
        targets=[group_arn],
        document=json.dumps({"operation": "x"}),
        abortConfig={
            "criteriaList": [
                {
                    "failureType": "ALL",
                    "action": "CANCEL",
                    "thresholdPercentage": 50,
                    "minNumberOfExecutedThings": 1,
                }
            ]
        },
    )
    jobs_data.start_next_pending_job_execution(thingName="dev-1")
    jobs_data.update_job_execution(jobId="deploy-abort", thingName="dev-1", status="FAILED")
    assert iot.describe_job(jobId="deploy-abort")["job"]["status"] == "CANCELED"
    queued = jobs_data.describe_job_execution(jobId="deploy-abort", thingName="dev-2")["execution"]
    assert queued["status"] == "CANCELED"


def test_list_jobs_filters_by_status_target_selection_and_thing_group(fleet):
    """ListJobs' status, targetSelection and thingGroupName filters (moto ignores them: a status=IN_PROGRESS
    inventory saw finished jobs too)."""
    iot, group_arn, _ = fleet
    iot.create_thing_group(thingGroupName="other")
    iot.create_job(jobId="running", targets=[group_arn], document="{}")
    iot.create_job(jobId="canceled", targets=[group_arn], document="{}", targetSelection="CONTINUOUS")
    iot.cancel_job(jobId="canceled", force=True)

    def ids(**filters):
        pages = iot.get_paginator("list_jobs").paginate(**filters)
        return sorted(job["jobId"] for page in pages for job in page["jobs"])

    assert ids() == ["canceled", "running"]
    assert ids(status="IN_PROGRESS") == ["running"]
    assert ids(status="CANCELED") == ["canceled"]
    assert ids(status="COMPLETED") == []
    assert ids(targetSelection="CONTINUOUS") == ["canceled"]
    assert ids(thingGroupName="fleet", status="IN_PROGRESS") == ["running"]
    assert ids(thingGroupName="other") == []
    assert ids(status="IN_PROGRESS", PaginationConfig={"PageSize": 1}) == ["running"]
    with pytest.raises(iot.exceptions.InvalidRequestException, match="status must be one of"):
        iot.list_jobs(status="RUNNING")


def test_a_detached_certificate_stays_attached_until_the_detachment_has_propagated(fleet, monkeypatch):
    """DetachThingPrincipal "is asynchronous. It might take several seconds for the detachment to propagate"
    (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html): until then
    DeleteCertificate refuses the certificate as attached to a thing (DeleteConflictException,
    https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html), DeleteThing refuses the
    thing as attached to a principal, and both listings still show the attachment. After it, both go."""
    from local_aws import iot as sandbox_iot

    assert sandbox_iot.DETACH_PROPAGATION_S >= 1  # the default: AWS's "several seconds", not moto's at once
    monkeypatch.setattr(sandbox_iot, "DETACH_PROPAGATION_S", 1.0)
    iot, _, created = fleet
    cert_id, cert_arn = created["certificateId"], created["certificateArn"]
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")

    detached_at = time.monotonic()
    iot.detach_thing_principal(thingName="dev-1", principal=cert_arn)
    iot.detach_thing_principal(thingName="dev-1", principal=cert_arn)  # again while it propagates: answered
    with pytest.raises(iot.exceptions.DeleteConflictException, match="detached"):
        iot.delete_certificate(certificateId=cert_id, forceDelete=True)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="still attached"):
        iot.delete_thing(thingName="dev-1")
    assert iot.list_thing_principals(thingName="dev-1")["principals"] == [cert_arn]
    assert iot.list_principal_things(principal=cert_arn)["things"] == ["dev-1"]

    while iot.list_thing_principals(thingName="dev-1")["principals"]:
        assert time.monotonic() - detached_at < 10, "the detachment never propagated"
        time.sleep(0.1)
    assert time.monotonic() - detached_at >= 1.0
    assert iot.list_principal_things(principal=cert_arn)["things"] == []
    iot.delete_certificate(certificateId=cert_id, forceDelete=True)
    iot.delete_thing(thingName="dev-1")
    assert [t["thingName"] for t in iot.list_things()["things"]] == ["dev-2"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):  # nothing is attached any more
        iot.detach_thing_principal(thingName="dev-2", principal=cert_arn)


def test_attaching_again_while_a_detachment_propagates_keeps_the_attachment(fleet, monkeypatch):
    from local_aws import iot as sandbox_iot

    monkeypatch.setattr(sandbox_iot, "DETACH_PROPAGATION_S", 0.3)
    iot, _, created = fleet
    iot.detach_thing_principal(thingName="dev-1", principal=created["certificateArn"])
    iot.attach_thing_principal(thingName="dev-1", principal=created["certificateArn"])
    time.sleep(0.5)
    assert iot.list_thing_principals(thingName="dev-1")["principals"] == [created["certificateArn"]]
