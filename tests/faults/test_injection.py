"""The sandbox's fault injection (local_aws/faults.py): each service's own throttling error in its protocol's
shape, 5xx, latency, determinism, and never on the sandbox's own calls. Fast: part of `make test`."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws import faults as sandbox_faults
from tests.faults.sandbox_faults import clear_faults, fault_report, set_faults

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def user(aws):
    """An IAM user allowed everything: the kind of caller faults apply to (the admin key is exempt)."""
    iam = boto3.client("iam")
    iam.create_user(UserName="fault-caller")
    iam.put_user_policy(
        UserName="fault-caller",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="fault-caller")["AccessKey"]
    yield {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    clear_faults(aws.url)


def client(service, credentials, **kwargs):
    return boto3.client(service, config=NO_RETRY, **credentials, **kwargs)


# (service, a read call, the error code, the HTTP status): one per protocol the pipelines use
THROTTLED = [
    ("sagemaker", lambda c: c.list_endpoints(), "ThrottlingException", 400),  # json
    ("emr", lambda c: c.list_clusters(), "ThrottlingException", 400),  # json
    ("batch", lambda c: c.describe_job_queues(), "ThrottlingException", 400),  # rest-json
    ("iot", lambda c: c.list_things(), "ThrottlingException", 400),  # rest-json, the model's own error
    ("sqs", lambda c: c.list_queues(), "RequestThrottled", 400),  # json, awsQueryCompatible
    ("cloudwatch", lambda c: c.describe_alarms(), "ThrottlingException", 400),  # smithy-rpc-v2-cbor
    ("iam", lambda c: c.list_roles(), "Throttling", 400),  # query XML
    ("s3", lambda c: c.list_buckets(), "SlowDown", 503),  # rest-xml
    (
        "application-autoscaling",
        lambda c: c.describe_scalable_targets(ServiceNamespace="sagemaker"),
        "ThrottlingException",
        400,
    ),
]


@pytest.mark.parametrize(("service", "call", "code", "status"), THROTTLED, ids=[t[0] for t in THROTTLED])
def test_a_throttled_call_gets_the_services_own_throttling_error(aws, user, service, call, code, status):
    set_faults(aws.url, {"seed": 1, "rules": [{"service": service, "throttle": 1.0}]})

    with pytest.raises(ClientError) as raised:
        call(client(service, user))

    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
    [injected] = fault_report(aws.url)["injected"]
    assert (injected["service"], injected["kind"], injected["count"]) == (service, "throttle", 1)


def test_botocore_counts_the_injected_errors_as_throttling_and_retries_them(aws, user):
    """What makes the shapes right: botocore's standard retry mode retries them (and a job's SDK would)."""
    set_faults(aws.url, {"seed": 3, "rules": [{"service": ["batch", "s3"], "throttle": 0.5}]})
    retrying = Config(retries={"mode": "standard", "max_attempts": 10})
    batch = boto3.client("batch", config=retrying, **user)
    s3 = boto3.client("s3", config=retrying, **user)

    for _ in range(6):
        batch.describe_job_queues()
        s3.list_buckets()

    kinds = {(i["service"], i["kind"]) for i in fault_report(aws.url)["injected"]}
    assert kinds == {("batch", "throttle"), ("s3", "throttle")}


def test_server_errors_and_latency(aws, user):
    set_faults(
        aws.url,
        {
            "rules": [
                {"service": "sagemaker", "operation": "ListModels", "server_error": 1.0},
                {"service": "sagemaker", "latency_ms": 300},
            ]
        },
    )
    sagemaker = client("sagemaker", user)

    with pytest.raises(ClientError) as raised:
        sagemaker.list_models()
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    started = time.monotonic()
    sagemaker.list_endpoints()  # the second rule: served, late
    assert time.monotonic() - started >= 0.3


def test_only_the_named_operation_is_faulted(aws, user):
    set_faults(aws.url, {"rules": [{"service": "sagemaker", "operation": "ListEndpoints", "throttle": 1.0}]})
    sagemaker = client("sagemaker", user)

    sagemaker.list_models()
    with pytest.raises(ClientError):
        sagemaker.list_endpoints()


def test_rest_operations_are_named_from_the_service_model(aws, user):
    """Batch and IoT carry no operation header: the path and method name it (SubmitJob, not '?')."""
    set_faults(
        aws.url,
        {
            "rules": [
                {"service": "batch", "operation": "DescribeJobs", "throttle": 1.0},
                {"service": "s3", "operation": "ListObjectsV2", "throttle": 1.0},
            ]
        },
    )
    batch, s3 = client("batch", user), client("s3", user)
    boto3.client("s3").create_bucket(Bucket="fault-bucket")

    batch.describe_job_queues()
    s3.head_bucket(Bucket="fault-bucket")
    with pytest.raises(ClientError):
        batch.describe_jobs(jobs=["x"])
    with pytest.raises(ClientError):
        s3.list_objects_v2(Bucket="fault-bucket")


def test_operations_that_share_a_path_are_told_apart_by_their_required_members(aws, user):
    """S3's PutObject and CopyObject are both PUT /{Bucket}/{Key+}; CopyObject's required x-amz-copy-source
    header names it (UploadPart's required partNumber and uploadId likewise). A PutObject rule was matched
    against CopyObject and never faulted a PutObject."""
    boto3.client("s3").create_bucket(Bucket="fault-bucket")
    s3 = client("s3", user)
    s3.put_object(Bucket="fault-bucket", Key="a", Body=b"x")

    set_faults(aws.url, {"rules": [{"service": "s3", "operation": "PutObject", "server_error": 1.0}]})
    s3.copy_object(Bucket="fault-bucket", Key="b", CopySource={"Bucket": "fault-bucket", "Key": "a"})
    with pytest.raises(ClientError, match="InternalError"):
        s3.put_object(Bucket="fault-bucket", Key="c", Body=b"x")

    set_faults(aws.url, {"rules": [{"service": "s3", "operation": "CopyObject", "server_error": 1.0}]})
    s3.put_object(Bucket="fault-bucket", Key="c", Body=b"x")
    with pytest.raises(ClientError, match="InternalError"):
        s3.copy_object(Bucket="fault-bucket", Key="d", CopySource={"Bucket": "fault-bucket", "Key": "a"})


def test_the_same_seed_gives_the_same_faults(aws, user):
    def fates(seed):
        set_faults(aws.url, {"seed": seed, "throttle": 0.3, "service": "sagemaker"})
        sagemaker = client("sagemaker", user)
        outcome = []
        for _ in range(40):
            try:
                sagemaker.list_endpoints()
                outcome.append(0)
            except ClientError:
                outcome.append(1)
        return outcome

    first, again, other = fates(11), fates(11), fates(12)
    assert first == again and first != other
    assert 4 <= sum(first) <= 20  # about 30 % of 40


def test_the_sandboxs_own_calls_and_its_jobs_sessions_are_never_faulted(aws, user):
    set_faults(aws.url, {"throttle": 1.0})
    boto3.client("sagemaker").list_endpoints()  # the administrator key: test setup, the sandbox's own work

    role = boto3.client("iam").create_role(
        RoleName="job-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                    }
                ],
            }
        ),
    )
    boto3.client("iam").put_role_policy(
        RoleName="job-role",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    from local_aws import jobs

    env = jobs.aws_env("us-east-1", role["Role"]["Arn"], "sagemaker.amazonaws.com")  # what a job gets
    job = boto3.client(
        "sagemaker",
        config=NO_RETRY,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    job.list_endpoints()

    with pytest.raises(ClientError):
        client("sagemaker", user).list_endpoints()  # a user of the API is


def test_a_bad_configuration_is_refused_naming_the_fix(aws):
    with pytest.raises(ValueError, match="throttle is a share of calls between 0 and 1"):
        set_faults(aws.url, {"throttle": 30})
    with pytest.raises(ValueError, match="unknown rule key"):
        set_faults(aws.url, {"rules": [{"service": "batch", "throttel": 0.3}]})
    with pytest.raises(sandbox_faults.FaultConfigError, match="is not JSON.*ORCHARD_SANDBOX_FAULTS to JSON"):
        sandbox_faults.parse("throttle=0.3")
    assert fault_report(aws.url)["config"] is None  # the refused configurations changed nothing


def test_the_environment_variable_configures_it_and_the_route_overrides_it(aws, user, monkeypatch):
    monkeypatch.setenv("ORCHARD_SANDBOX_FAULTS", json.dumps({"service": "iam", "throttle": 1.0}))
    clear_faults(aws.url)  # back to the variable
    assert fault_report(aws.url)["source"] == "ORCHARD_SANDBOX_FAULTS"
    with pytest.raises(ClientError):
        client("iam", user).list_roles()

    set_faults(aws.url, {"rules": []})
    client("iam", user).list_roles()
