"""IAM enforcement in the sandbox (local_aws/iam.py): callers other than the administrator key get what
their identity policies allow, with AWS's evaluation logic and AccessDenied messages."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _user(name: str, *statements: dict) -> dict[str, str]:
    """An IAM user with one inline policy; returns boto3 credential kwargs of its access key."""
    iam = boto3.client("iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=_policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def _trust_service(service: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _role(name: str, trust: dict) -> str:
    role = boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return role["Role"]["Arn"]


def _denied(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def test_the_issues_example_only_list_buckets_cannot_list_training_jobs(aws):
    creds = _user("lister", {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"})
    boto3.client("s3").create_bucket(Bucket="bucket-one")
    assert [b["Name"] for b in boto3.client("s3", **creds).list_buckets()["Buckets"]] == ["bucket-one"]
    with pytest.raises(ClientError) as excinfo:
        boto3.client("sagemaker", **creds).list_training_jobs()
    code, message = _denied(excinfo)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/lister is not authorized to perform: "
        "sagemaker:ListTrainingJobs on resource: * because no identity-based policy allows "
        "the sagemaker:ListTrainingJobs action"
    )
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_admin_credentials_are_unaffected(aws):
    _user("someone")  # IAM has users: the administrator key still may do everything
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    boto3.client("s3").create_bucket(Bucket="admin-bucket")
    boto3.client("s3").put_object(Bucket="admin-bucket", Key="k", Body=b"x")


def test_unknown_access_key_is_rejected_like_aws(aws):
    with pytest.raises(ClientError) as excinfo:
        boto3.client("sagemaker", aws_access_key_id="AKIANOTAKEY", aws_secret_access_key="x").list_models()
    assert _denied(excinfo)[0] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as excinfo:
        boto3.client("s3", aws_access_key_id="AKIANOTAKEY", aws_secret_access_key="x").list_buckets()
    assert _denied(excinfo)[0] == "InvalidAccessKeyId"


def test_s3_object_access_is_scoped_to_the_policys_resources(aws):
    admin = boto3.client("s3")
    admin.create_bucket(Bucket="data")
    admin.put_object(Bucket="data", Key="mine/a.txt", Body=b"a")
    admin.put_object(Bucket="data", Key="other/b.txt", Body=b"b")
    s3 = boto3.client(
        "s3",
        **_user(
            "reader",
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::data/mine/*",
            },
        ),
    )
    assert s3.get_object(Bucket="data", Key="mine/a.txt")["Body"].read() == b"a"
    s3.put_object(Bucket="data", Key="mine/new.txt", Body=b"n")
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="data", Key="other/b.txt")
    code, message = _denied(excinfo)
    assert code == "AccessDenied"
    assert "s3:GetObject on resource: arn:aws:s3:::data/other/b.txt" in message
    with pytest.raises(ClientError):
        s3.put_object(Bucket="data", Key="other/c.txt", Body=b"c")
    with pytest.raises(ClientError):  # ListBucket is another action
        s3.list_objects_v2(Bucket="data", Prefix="mine/")


def test_list_bucket_prefix_condition(aws):
    boto3.client("s3").create_bucket(Bucket="data")
    s3 = boto3.client(
        "s3",
        **_user(
            "lister",
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::data",
                "Condition": {"StringLike": {"s3:prefix": ["mine/*"]}},
            },
        ),
    )
    assert s3.list_objects_v2(Bucket="data", Prefix="mine/x").get("KeyCount") == 0
    for prefix in ("other/", ""):
        with pytest.raises(ClientError):
            s3.list_objects_v2(Bucket="data", Prefix=prefix)


def test_explicit_deny_beats_allow(aws):
    creds = _user(
        "denied",
        {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sagemaker:List*", "Resource": "*"},
    )
    sagemaker = boto3.client("sagemaker", **creds)
    with pytest.raises(ClientError) as excinfo:
        sagemaker.list_training_jobs()
    assert _denied(excinfo)[1].endswith("with an explicit deny in an identity-based policy")
    with pytest.raises(ClientError) as excinfo:  # allowed by sagemaker:*, not denied: reaches the service
        sagemaker.describe_training_job(TrainingJobName="nope")
    assert _denied(excinfo)[0] == "ValidationException"


def test_resource_scoping_of_sagemaker_jobs_and_not_action(aws):
    creds = _user(
        "scoped",
        {
            "Effect": "Allow",
            "Action": "sagemaker:DescribeTrainingJob",
            "Resource": f"arn:aws:sagemaker:*:{ACCOUNT}:training-job/mine-*",
        },
        {"Effect": "Allow", "NotAction": "sagemaker:*", "Resource": "*"},
    )
    sagemaker = boto3.client("sagemaker", **creds)
    with pytest.raises(ClientError) as excinfo:
        sagemaker.describe_training_job(TrainingJobName="mine-1")
    assert _denied(excinfo)[0] == "ValidationException"  # allowed; the job just does not exist
    with pytest.raises(ClientError) as excinfo:
        sagemaker.describe_training_job(TrainingJobName="theirs-1")
    assert (
        "sagemaker:DescribeTrainingJob on resource: "
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/theirs-1"
    ) in _denied(excinfo)[1]
    boto3.client("sqs", **creds).list_queues()  # NotAction sagemaker:* allows every other service
    with pytest.raises(ClientError):
        sagemaker.list_models()


def test_group_and_managed_policies_count(aws):
    iam = boto3.client("iam")
    arn = iam.create_policy(
        PolicyName="lm",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "sagemaker:ListModels", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.create_group(GroupName="g")
    iam.attach_group_policy(GroupName="g", PolicyArn=arn)
    creds = _user("member")
    sagemaker = boto3.client("sagemaker", **creds)
    with pytest.raises(ClientError):
        sagemaker.list_models()
    iam.add_user_to_group(GroupName="g", UserName="member")
    assert sagemaker.list_models()["Models"] == []


def test_assumed_role_session_is_limited_by_the_role_policy(aws):
    iam = boto3.client("iam")
    role_arn = _role("r", TRUST_ACCOUNT)
    iam.put_role_policy(
        RoleName="r",
        PolicyName="p",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "sagemaker:ListModels", "Resource": "*"}),
    )
    session = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="sess")["Credentials"]
    creds = {
        "aws_access_key_id": session["AccessKeyId"],
        "aws_secret_access_key": session["SecretAccessKey"],
        "aws_session_token": session["SessionToken"],
    }
    assert boto3.client("sagemaker", **creds).list_models()["Models"] == []
    with pytest.raises(ClientError) as excinfo:
        boto3.client("sagemaker", **creds).list_endpoints()
    assert f"User: arn:aws:sts::{ACCOUNT}:assumed-role/r/sess is not authorized" in _denied(excinfo)[1]
    assert boto3.client("sts", **creds).get_caller_identity()["Arn"].endswith("assumed-role/r/sess")


def test_assume_role_needs_the_trust_policy(aws):
    boto3.client("iam")
    trust_service = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = _role("svc", trust_service)
    sts = boto3.client("sts", **_user("u", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="sess")
    assert "trust policy" in _denied(excinfo)[1]


def test_pass_role_needs_permission_for_that_role_and_service(aws):
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = iam.create_role(RoleName="exec", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    create = {"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": "*"}
    container = {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"}
    wrong_service = _user(
        "wrong",
        create,
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "batch.amazonaws.com"}},
        },
    )
    with pytest.raises(ClientError) as excinfo:
        boto3.client("sagemaker", **wrong_service).create_model(
            ModelName="m1", ExecutionRoleArn=role_arn, PrimaryContainer=container
        )
    assert f"iam:PassRole on resource: {role_arn}" in _denied(excinfo)[1]
    right = _user(
        "right",
        create,
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
    )
    boto3.client("sagemaker", **right).create_model(
        ModelName="m2", ExecutionRoleArn=role_arn, PrimaryContainer=container
    )
    admin = boto3.client("sagemaker")
    admin.create_model(ModelName="m3", ExecutionRoleArn=role_arn, PrimaryContainer=container)


def test_pass_role_for_batch_and_emr(aws):
    creds = _user(
        "batcher",
        {
            "Effect": "Allow",
            "Action": ["batch:RegisterJobDefinition", "elasticmapreduce:RunJobFlow"],
            "Resource": "*",
        },
    )
    with pytest.raises(ClientError) as excinfo:
        boto3.client("batch", **creds).register_job_definition(
            jobDefinitionName="d",
            type="container",
            containerProperties={
                "image": "busybox",
                "vcpus": 1,
                "memory": 128,
                "jobRoleArn": f"arn:aws:iam::{ACCOUNT}:role/job",
            },
        )
    assert f"iam:PassRole on resource: arn:aws:iam::{ACCOUNT}:role/job" in _denied(excinfo)[1]
    with pytest.raises(ClientError) as excinfo:
        boto3.client("emr", **creds).run_job_flow(
            Name="c",
            ReleaseLabel="emr-7.1.0",
            ServiceRole="svc",
            JobFlowRole="profile",
            Instances={"InstanceCount": 1, "MasterInstanceType": "m5.xlarge"},
        )
    assert f"iam:PassRole on resource: arn:aws:iam::{ACCOUNT}:role/svc" in _denied(excinfo)[1]


def test_conditions_request_tags_and_unknown_operators_fail_closed(aws):
    boto3.client("s3").create_bucket(Bucket="data")
    secrets = boto3.client(
        "secretsmanager",
        **_user(
            "tagger",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:CreateSecret",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestTag/team": "orchard"}},
            },
        ),
    )
    secrets.create_secret(Name="ok", SecretString="x", Tags=[{"Key": "team", "Value": "orchard"}])
    with pytest.raises(ClientError):
        secrets.create_secret(Name="no", SecretString="x", Tags=[{"Key": "team", "Value": "other"}])
    with pytest.raises(ClientError):
        secrets.create_secret(Name="none", SecretString="x")
    # A Deny with an operator the sandbox does not implement must not be skipped: the call is denied.
    after_2000 = {"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}
    s3 = boto3.client(
        "s3",
        **_user(
            "odd",
            {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": after_2000},
        ),
    )
    with pytest.raises(ClientError) as excinfo:
        s3.list_buckets()
    assert "DateGreaterThan" in _denied(excinfo)[1]


def test_permissions_boundary_limits_a_role(aws):
    iam = boto3.client("iam")
    boundary = iam.create_policy(
        PolicyName="b",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "sagemaker:List*", "Resource": "*"}),
    )["Policy"]["Arn"]
    role_arn = iam.create_role(
        RoleName="bounded", AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT), PermissionsBoundary=boundary
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="bounded",
        PolicyName="p",
        PolicyDocument=_policy(
            {"Effect": "Allow", "Action": ["sagemaker:ListModels", "s3:ListAllMyBuckets"], "Resource": "*"}
        ),
    )
    session = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="sess")["Credentials"]
    creds = {
        "aws_access_key_id": session["AccessKeyId"],
        "aws_secret_access_key": session["SecretAccessKey"],
        "aws_session_token": session["SessionToken"],
    }
    boto3.client("sagemaker", **creds).list_models()
    with pytest.raises(ClientError) as excinfo:
        boto3.client("s3", **creds).list_buckets()
    assert "no permissions boundary allows the s3:ListAllMyBuckets action" in _denied(excinfo)[1]


def _batch_job(job_role: str | None, key: str) -> tuple[dict, str]:
    """Run tests/local_aws/jobs/hello_batch (writes s3://results/<key>) as `job_role`; (job, its log)."""
    from tests.local_aws.polling import watch_states

    batch, _iam = boto3.client("batch"), boto3.client("iam")
    service = _role("batch-svc", _trust_service("batch.amazonaws.com"))
    env = batch.create_compute_environment(
        computeEnvironmentName="iam-ce", type="UNMANAGED", state="ENABLED", serviceRole=service
    )
    batch.create_job_queue(
        jobQueueName="iam-queue",
        priority=1,
        state="ENABLED",
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    properties = {
        "image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/orchard/hello-batch:1.0",
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        "environment": [{"name": "OUTPUT_BUCKET", "value": "results"}, {"name": "OUTPUT_KEY", "value": key}],
    }
    if job_role:
        properties["jobRoleArn"] = job_role
    batch.register_job_definition(
        jobDefinitionName="iam-hello", type="container", containerProperties=properties
    )
    job_id = batch.submit_job(jobName="iam-hello", jobQueue="iam-queue", jobDefinition="iam-hello")["jobId"]
    status = lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]  # noqa: E731
    watch_states(status, {"SUCCEEDED", "FAILED"}, 300)
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    events = boto3.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"]
    )["events"]
    return job, "\n".join(e["message"] for e in events)


def test_a_job_runs_with_its_roles_credentials_and_is_limited_by_them(aws):
    boto3.client("s3").create_bucket(Bucket="results")
    iam = boto3.client("iam")
    role_arn = _role("limited-job", _trust_service("ecs-tasks.amazonaws.com"))
    iam.put_role_policy(
        RoleName="limited-job",
        PolicyName="p",
        PolicyDocument=_policy(
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::results/allowed/*"}
        ),
    )
    job, log = _batch_job(role_arn, "denied/marker")
    assert job["status"] == "FAILED"
    assert (
        "assumed-role/limited-job/ecs-tasks is not authorized to perform: s3:PutObject on resource: "
        "arn:aws:s3:::results/denied/marker"
    ) in log


def test_a_job_whose_role_the_service_cannot_assume_fails_naming_the_role(aws):
    boto3.client("s3").create_bucket(Bucket="results")
    job, _ = _batch_job(f"arn:aws:iam::{ACCOUNT}:role/does-not-exist", "allowed/marker")
    assert job["status"] == "FAILED"
    assert "role/does-not-exist" in job["statusReason"]


def _session(role_arn: str) -> dict[str, str]:
    credentials = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="airflow")["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def test_pipeline_roles_hold_exactly_their_policy_files(aws):
    from local_aws.iam_setup import IAM_FOLDER, create_pipeline_roles

    role_arn = create_pipeline_roles(aws.url, ["pose_training"])
    assert role_arn == f"arn:aws:iam::{ACCOUNT}:role/orchard-airflow-pose-training"
    iam = boto3.client("iam")
    document = iam.get_role_policy(RoleName="orchard-airflow-pose-training", PolicyName="pose_training")
    assert document["PolicyDocument"] == json.loads((IAM_FOLDER / "pose_training.json").read_text())
    job_role = iam.get_role(RoleName="orchard-batch-job")["Role"]
    principal = job_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "ecs-tasks.amazonaws.com"}
    sqs = boto3.client("sqs", **_session(role_arn))
    sqs.create_queue(QueueName="orchard-pose-training-uploads")  # in its policy
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName="someone-elses-queue")
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:someone-elses-queue"
    assert f"sqs:CreateQueue on resource: {queue_arn}" in _denied(excinfo)[1]
    with pytest.raises(ClientError):  # another pipeline's service
        boto3.client("sagemaker", **_session(role_arn)).list_training_jobs()


def test_the_edge_pipeline_cannot_escalate_through_the_roles_it_creates(aws):
    from local_aws.iam_setup import create_pipeline_roles

    iam = boto3.client("iam", **_session(create_pipeline_roles(aws.url, ["edge_deployment"])))
    trust = json.dumps(_trust_service("credentials.iot.amazonaws.com"))
    admin = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    with pytest.raises(ClientError) as excinfo:  # no boundary: denied
        iam.create_role(RoleName="orchard-edge-fleet", AssumeRolePolicyDocument=trust)
    assert "iam:CreateRole" in _denied(excinfo)[1]
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/orchard-edge-device-boundary"
    with pytest.raises(ClientError):  # not one of its device roles
        iam.create_role(RoleName="other", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary)
    iam.create_role(
        RoleName="orchard-edge-fleet", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary
    )
    iam.put_role_policy(RoleName="orchard-edge-fleet", PolicyName="p", PolicyDocument=admin)
    with pytest.raises(ClientError):
        iam.delete_role_permissions_boundary(RoleName="orchard-edge-fleet")
    with pytest.raises(ClientError):
        iam.attach_role_policy(
            RoleName="orchard-edge-fleet", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
        )
    # The role's "*" policy is capped by the boundary: a session of it cannot, e.g., list SageMaker jobs.
    admin_iam = boto3.client("iam")
    admin_iam.update_assume_role_policy(
        RoleName="orchard-edge-fleet", PolicyDocument=json.dumps(TRUST_ACCOUNT)
    )
    device = _session(f"arn:aws:iam::{ACCOUNT}:role/orchard-edge-fleet")
    with pytest.raises(ClientError) as excinfo:
        boto3.client("sagemaker", **device).list_training_jobs()
    assert "no permissions boundary allows" in _denied(excinfo)[1]


def test_sqs_batch_actions_are_authorized_by_their_single_actions(aws):
    """ "You cannot set permissions explicitly for SendMessageBatch, DeleteMessageBatch, or
    ChangeMessageVisibilityBatch" (Amazon SQS batch actions): the Asset watcher's DeleteMessageBatch needs
    sqs:DeleteMessage, and is denied without it."""
    queue = boto3.client("sqs").create_queue(QueueName="uploads")["QueueUrl"]
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:uploads"
    reader = _user(
        "reader",
        {
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
            "Resource": arn,
        },
    )
    sqs = boto3.client("sqs", **reader)
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "a"}])
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "ReceiptHandle": message["ReceiptHandle"]}])
    sender = boto3.client(
        "sqs", **_user("sender", {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn})
    )
    with pytest.raises(ClientError) as excinfo:
        sender.delete_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "ReceiptHandle": "x"}])
    assert "sqs:DeleteMessage on resource" in _denied(excinfo)[1]
