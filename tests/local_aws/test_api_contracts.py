"""Contract 6: requests AWS accepts are accepted, answers AWS gives are given, the rest fails as AWS fails.

Each test states the AWS API reference rule it checks (see docs/sandbox.md, "6. Requests and answers").
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws.s3io import tar_gz
from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.polling import watch_states

ROLE = "arn:aws:iam::123456789012:role/orchard-sagemaker-execution"
BUCKET = "contracts-bucket"
ECHO_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/echo-model:1.0"
PYTORCH_INFERENCE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


# ------------------------------------------------------------------------------------------ Batch


@pytest.fixture
def fargate(aws) -> dict:
    """computeResources for a Fargate environment in a real (sandbox) subnet and security group."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    return {"type": "FARGATE", "maxvCpus": 4, "subnets": [subnet], "securityGroupIds": [group]}


def test_a_managed_compute_environment_without_service_role_uses_the_service_linked_role(fargate):
    batch, iam = boto3.client("batch"), boto3.client("iam")

    batch.create_compute_environment(
        computeEnvironmentName="orchard-ce", type="MANAGED", computeResources=fargate
    )

    [env] = batch.describe_compute_environments(computeEnvironments=["orchard-ce"])["computeEnvironments"]
    role = iam.get_role(RoleName="AWSServiceRoleForBatch")["Role"]
    assert env["serviceRole"] == role["Arn"]
    assert role["Path"] == "/aws-service-role/batch.amazonaws.com/"
    batch.create_compute_environment(
        computeEnvironmentName="orchard-ce2", type="MANAGED", computeResources=fargate
    )
    assert len([r for r in iam.list_roles()["Roles"] if r["RoleName"] == "AWSServiceRoleForBatch"]) == 1


def test_an_unmanaged_compute_environment_still_needs_a_service_role(aws):
    code, message = error_of(
        lambda: boto3.client("batch").create_compute_environment(
            computeEnvironmentName="orchard-ce", type="UNMANAGED"
        )
    )
    assert code == "ClientException" and "ServiceRole is required" in message


def test_a_job_queue_without_state_is_enabled_and_a_bad_state_is_refused(fargate):
    batch = boto3.client("batch")
    batch.create_compute_environment(
        computeEnvironmentName="orchard-ce", type="MANAGED", computeResources=fargate
    )
    order = [{"order": 1, "computeEnvironment": "orchard-ce"}]

    batch.create_job_queue(jobQueueName="orchard-q", priority=1, computeEnvironmentOrder=order)

    [queue] = batch.describe_job_queues(jobQueues=["orchard-q"])["jobQueues"]
    assert queue["state"] == "ENABLED"
    code, message = error_of(
        lambda: batch.create_job_queue(
            jobQueueName="orchard-q2", priority=1, state="ON", computeEnvironmentOrder=order
        )
    )
    assert code == "ClientException" and "state ON must be one of ENABLED | DISABLED" in message


# -------------------------------------------------------------------------------------- SageMaker


def test_describe_processing_job_returns_processing_resources(aws):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker")
    resources = {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}}

    sagemaker.create_processing_job(
        ProcessingJobName="p1",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/nope:1"},
        ProcessingResources=resources,
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )

    described = sagemaker.describe_processing_job(ProcessingJobName="p1")
    assert described["ProcessingResources"] == resources
    watch_states(
        lambda: sagemaker.describe_processing_job(ProcessingJobName="p1")["ProcessingJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )
    assert sagemaker.describe_processing_job(ProcessingJobName="p1")["ProcessingResources"] == resources


def test_list_compilation_jobs_answers_with_a_target_platform_job(aws):
    sagemaker = boto3.client("sagemaker")
    for name, output in (
        ("cpu-platform", {"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}),
        ("device", {"TargetDevice": "jetson_nano"}),
    ):
        sagemaker.create_compilation_job(
            CompilationJobName=name,
            RoleArn=ROLE,
            InputConfig={
                "S3Uri": f"s3://{BUCKET}/m.tar.gz",
                "DataInputConfig": '{"x": [1, 3]}',
                "Framework": "ONNX",
            },
            OutputConfig={"S3OutputLocation": f"s3://{BUCKET}/out", **output},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )

    summaries = {
        s["CompilationJobName"]: s for s in sagemaker.list_compilation_jobs()["CompilationJobSummaries"]
    }

    assert summaries["cpu-platform"]["CompilationTargetPlatformOs"] == "LINUX"
    assert summaries["cpu-platform"]["CompilationTargetPlatformArch"] == "X86_64"
    assert "CompilationTargetPlatformAccelerator" not in summaries["cpu-platform"]
    assert summaries["device"]["CompilationTargetDevice"] == "jetson_nano"


def _deploy(sagemaker, name: str, model_files: dict[str, bytes], image: str = ECHO_IMAGE, async_paths=None):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"models/{name}.tar.gz", Body=tar_gz(model_files))
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": image, "ModelDataUrl": f"s3://{BUCKET}/models/{name}.tar.gz"},
    )
    extra = {"AsyncInferenceConfig": {"OutputConfig": async_paths}} if async_paths else {}
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
        **extra,
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return watch_states(
        lambda: sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"], {"InService", "Failed"}
    )


@pytest.fixture
def sagemaker(aws):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return boto3.client("sagemaker")


def test_a_real_time_endpoint_runs_its_model_handler(sagemaker):
    runtime = boto3.client("sagemaker-runtime")
    assert _deploy(sagemaker, "echo", {"model.json": b'{"name": "echo-v7"}'}) == ["Creating", "InService"]

    answer = runtime.invoke_endpoint(
        EndpointName="echo", Body=json.dumps({"items": [1, 2, 3, 4]}), ContentType="application/json"
    )

    assert json.loads(answer["Body"].read()) == {"items": 4, "model": "echo-v7"}
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    second = runtime.invoke_endpoint(
        EndpointName="echo", Body=json.dumps({"items": []}), ContentType="application/json"
    )
    assert json.loads(second["Body"].read()) == {"items": 0, "model": "echo-v7"}


def test_a_real_time_handler_that_raises_answers_model_error_with_its_message(sagemaker):
    runtime = boto3.client("sagemaker-runtime")
    code = b"def predict_fn(data, model):\n    raise ValueError('input has no field pixels')\n"
    assert (
        _deploy(sagemaker, "raises", {"code/inference.py": code}, image=PYTORCH_INFERENCE)[-1] == "InService"
    )

    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="raises", Body=b"{}", ContentType="application/json")

    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "Received server error (500) from primary" in error["Error"]["Message"]
    assert "input has no field pixels" in error["Error"]["Message"]
    assert json.loads(error["OriginalMessage"])["message"] == "ValueError: input has no field pixels"
    assert error["OriginalStatusCode"] == 500
    assert "/aws/sagemaker/Endpoints/raises" in error["LogStreamArn"]


def test_a_real_time_model_without_a_handler_answers_model_error_naming_it(sagemaker):
    runtime = boto3.client("sagemaker-runtime")
    assert _deploy(sagemaker, "bare", {"weights.bin": b"\0"}, image=PYTORCH_INFERENCE)[-1] == "InService"

    code, message = error_of(lambda: runtime.invoke_endpoint(EndpointName="bare", Body=b"{}"))

    assert code == "ModelError" and "no inference handler" in message and "inference.py" in message


def test_invoke_endpoint_on_a_failed_endpoint_is_refused_with_its_reason(sagemaker):
    runtime = boto3.client("sagemaker-runtime")
    code = b"def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n"
    assert _deploy(sagemaker, "broken", {"code/inference.py": code}, image=PYTORCH_INFERENCE)[-1] == "Failed"

    code, message = error_of(lambda: runtime.invoke_endpoint(EndpointName="broken", Body=b"{}"))

    assert code == "ValidationError" and "Failed" in message and "weights are corrupt" in message


def test_invoke_endpoint_on_an_async_endpoint_or_a_missing_one_is_refused(sagemaker):
    runtime = boto3.client("sagemaker-runtime")
    paths = {"S3OutputPath": f"s3://{BUCKET}/out/", "S3FailurePath": f"s3://{BUCKET}/fail/"}
    assert (
        _deploy(sagemaker, "queued", {"model.json": b'{"name": "q"}'}, async_paths=paths)[-1] == "InService"
    )

    code, message = error_of(lambda: runtime.invoke_endpoint(EndpointName="queued", Body=b"{}"))
    assert code == "ValidationError" and "InvokeEndpointAsync" in message
    code, message = error_of(lambda: runtime.invoke_endpoint(EndpointName="nowhere", Body=b"{}"))
    assert code == "ValidationError" and "nowhere" in message and "not found" in message


def test_an_async_failure_object_is_the_model_servers_json_error(sagemaker):
    s3, runtime = boto3.client("s3"), boto3.client("sagemaker-runtime")
    paths = {"S3OutputPath": f"s3://{BUCKET}/out/", "S3FailurePath": f"s3://{BUCKET}/fail/"}
    assert (
        _deploy(sagemaker, "echo-async", {"model.json": b'{"name": "e"}'}, async_paths=paths)[-1]
        == "InService"
    )
    s3.put_object(Bucket=BUCKET, Key="in/bad.json", Body=b'{"no_items": true}')

    failure = runtime.invoke_endpoint_async(
        EndpointName="echo-async", InputLocation=f"s3://{BUCKET}/in/bad.json", ContentType="application/json"
    )["FailureLocation"]

    key = failure.split("/", 3)[3]
    deadline = time.monotonic() + 60
    while True:
        try:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            break
        except ClientError:
            assert time.monotonic() < deadline, f"{failure} never appeared"
            time.sleep(0.1)
    error = json.loads(body)
    assert error["code"] == 500 and error["type"] == "InternalServerException"
    assert error["message"] == "KeyError: 'items'"


def _tiny_processing_request(name: str, input_uri: str) -> dict:
    return dict(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/prepare.py"],
            "ContainerArguments": ["/opt/ml/processing/input/data", "/opt/ml/processing/output"],
        },
        ProcessingInputs=[
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": input_uri,
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )


def test_a_job_reading_a_bucket_in_another_region_fails_naming_both_regions(aws):
    west = boto3.client("s3", region_name="us-west-2")
    west.create_bucket(Bucket="west-data", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    west.put_object(Bucket="west-data", Key="train/a.txt", Body=b"x\n")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker")  # us-east-1

    sagemaker.create_processing_job(**_tiny_processing_request("cross-region", "s3://west-data/train/"))
    sagemaker.create_training_job(
        TrainingJobName="cross-region-training",
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": ECHO_IMAGE, "TrainingInputMode": "File"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://west-data/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )

    processing = watch_states(
        lambda: sagemaker.describe_processing_job(ProcessingJobName="cross-region")["ProcessingJobStatus"],
        {"Completed", "Failed"},
    )
    training = watch_states(
        lambda: sagemaker.describe_training_job(TrainingJobName="cross-region-training")["TrainingJobStatus"],
        {"Completed", "Failed"},
    )
    assert processing[-1] == "Failed" and training[-1] == "Failed"
    for reason in (
        sagemaker.describe_processing_job(ProcessingJobName="cross-region")["FailureReason"],
        sagemaker.describe_training_job(TrainingJobName="cross-region-training")["FailureReason"],
    ):
        assert reason.startswith("ClientError: ") and "PermanentRedirect" in reason
        assert "'west-data'" in reason and "us-west-2" in reason and "us-east-1" in reason


def test_a_job_reading_a_bucket_in_its_own_region_runs(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/a.txt", Body=b"1\n2\n")
    s3.put_object(
        Bucket=BUCKET,
        Key="code/prepare.py",
        Body=(TEST_JOB_ROOT / "tiny_processing" / "prepare.py").read_bytes(),
    )
    request = _tiny_processing_request("same-region", f"s3://{BUCKET}/data/")
    request["ProcessingInputs"].append(
        {
            "InputName": "code",
            "S3Input": {
                "S3Uri": f"s3://{BUCKET}/code/",
                "LocalPath": "/opt/ml/processing/input/code",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }
    )
    request["ProcessingOutputConfig"] = {
        "Outputs": [
            {
                "OutputName": "counts",
                "S3Output": {
                    "S3Uri": f"s3://{BUCKET}/counts",
                    "LocalPath": "/opt/ml/processing/output",
                    "S3UploadMode": "EndOfJob",
                },
            }
        ]
    }
    sagemaker = boto3.client("sagemaker")

    sagemaker.create_processing_job(**request)

    seen = watch_states(
        lambda: sagemaker.describe_processing_job(ProcessingJobName="same-region")["ProcessingJobStatus"],
        {"Completed", "Failed"},
        timeout_s=600,
    )
    assert seen[-1] == "Completed", sagemaker.describe_processing_job(ProcessingJobName="same-region").get(
        "FailureReason"
    )
    assert json.loads(s3.get_object(Bucket=BUCKET, Key="counts/counts.json")["Body"].read()) == {"a.txt": 2}


# --------------------------------------------------------------------------- List*/Describe* sweep


def _create_resources_the_pipelines_read(fargate: dict) -> dict[str, str]:
    """One of each resource the DAGs, their hooks and the provider operators list or describe."""
    from tests.local_aws.test_async_endpoints_and_labeling import BUCKET as LABELING_BUCKET
    from tests.local_aws.test_async_endpoints_and_labeling import labeling_request

    s3, sagemaker, batch = boto3.client("s3"), boto3.client("sagemaker"), boto3.client("batch")
    iam, ec2, emr, iot = boto3.client("iam"), boto3.client("ec2"), boto3.client("emr"), boto3.client("iot")
    for bucket in (BUCKET, LABELING_BUCKET):
        s3.create_bucket(Bucket=bucket)
    ids: dict[str, str] = {}
    # SageMaker: every job kind (their images map to nothing, so they end Failed at once), a model,
    # an endpoint, a compilation job for a platform, a labeling job, a model package.
    unmapped = "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/nope:1"
    sagemaker.create_processing_job(
        **{
            **_tiny_processing_request("sweep-processing", f"s3://{BUCKET}/x/"),
            "AppSpecification": {"ImageUri": unmapped},
        }
    )
    sagemaker.create_training_job(
        TrainingJobName="sweep-training",
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": unmapped, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    assert _deploy(sagemaker, "sweep-echo", {"model.json": b'{"name": "s"}'})[-1] == "InService"
    sagemaker.create_transform_job(
        TransformJobName="sweep-transform",
        ModelName="sweep-echo",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/x/"}}
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/transform/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    sagemaker.create_compilation_job(
        CompilationJobName="sweep-neo",
        RoleArn=ROLE,
        InputConfig={
            "S3Uri": f"s3://{BUCKET}/m.tar.gz",
            "DataInputConfig": '{"x": [1, 3]}',
            "Framework": "ONNX",
        },
        OutputConfig={
            "S3OutputLocation": f"s3://{BUCKET}/neo",
            "TargetPlatform": {"Os": "LINUX", "Arch": "ARM64"},
        },
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    s3.put_object(
        Bucket=LABELING_BUCKET, Key="manifest/in.manifest", Body=b'{"source-ref": "s3://b/f.png"}\n'
    )
    s3.put_object(
        Bucket=LABELING_BUCKET,
        Key="manifest/categories.json",
        Body=json.dumps({"document-version": "2018-11-28", "labels": [{"label": "a"}]}),
    )
    sagemaker.create_labeling_job(**labeling_request("sweep-labeling", mode="BoundingBox"))
    sagemaker.create_model_package_group(ModelPackageGroupName="sweep-group")
    ids["model_package"] = sagemaker.create_model_package(
        ModelPackageGroupName="sweep-group",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": ECHO_IMAGE}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    # Batch: environment, queue, definition, a job.
    batch.create_compute_environment(
        computeEnvironmentName="sweep-ce", type="MANAGED", computeResources=fargate
    )
    batch.create_job_queue(
        jobQueueName="sweep-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "sweep-ce"}],
    )
    batch.register_job_definition(
        jobDefinitionName="sweep-jd",
        type="container",
        containerProperties={"image": unmapped, "vcpus": 1, "memory": 512},
    )
    ids["batch_job"] = batch.submit_job(jobName="sweep", jobQueue="sweep-q", jobDefinition="sweep-jd")[
        "jobId"
    ]
    # EMR: a cluster of a release the sandbox refuses (it ends at once) with one step.
    ids["cluster"] = emr.run_job_flow(
        Name="sweep",
        ReleaseLabel="emr-6.0.0",
        Instances={
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
            "KeepJobFlowAliveWhenNoSteps": False,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        Steps=[
            {
                "Name": "s",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "s3://x/y.py"]},
            }
        ],
    )["JobFlowId"]
    ids["step"] = emr.list_steps(ClusterId=ids["cluster"])["Steps"][0]["Id"]
    emr.create_security_configuration(Name="sweep-sc", SecurityConfiguration=json.dumps({}))
    # IoT: a thing in a group, a role alias, a job for the group; its principal.
    iot.create_thing(thingName="sweep-thing")
    group_arn = iot.create_thing_group(thingGroupName="sweep-group")["thingGroupArn"]
    iot.add_thing_to_thing_group(thingGroupName="sweep-group", thingName="sweep-thing")
    role_arn = iam.create_role(RoleName="sweep-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iot.create_role_alias(roleAlias="sweep-alias", roleArn=role_arn)
    iot.create_job(jobId="sweep-job", targets=[group_arn], document="{}")
    cert = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName="sweep-thing", principal=cert)
    ids["policy"] = iam.create_policy(
        PolicyName="sweep-policy",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    ids["key"] = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    boto3.client("secretsmanager").create_secret(Name="sweep-secret", SecretString="s")
    ids["queue"] = boto3.client("sqs").create_queue(QueueName="sweep-queue")["QueueUrl"]
    boto3.client("events").put_rule(Name="sweep-rule", EventPattern=json.dumps({"source": ["aws.s3"]}))
    autoscaling = boto3.client("application-autoscaling")
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/sweep-echo/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=0,
        MaxCapacity=1,
    )
    ids["subnet"], ids["group"] = fargate["subnets"][0], fargate["securityGroupIds"][0]
    ec2.describe_vpcs()
    return ids


def _reads(ids: dict[str, str]) -> list[tuple[str, str, dict]]:
    jobs = ("training", "processing", "transform")
    reads = [
        ("sagemaker", f"describe_{kind}_job", {f"{kind.capitalize()}JobName": f"sweep-{kind}"})
        for kind in jobs
    ]
    reads += [("sagemaker", f"list_{kind}_jobs", {}) for kind in jobs]
    reads += [
        ("sagemaker", "list_training_jobs", {"NameContains": "sweep"}),  # the operators' name check
        ("sagemaker", "list_processing_jobs", {"NameContains": "sweep"}),
        ("sagemaker", "describe_model", {"ModelName": "sweep-echo"}),
        ("sagemaker", "list_models", {}),
        ("sagemaker", "describe_endpoint_config", {"EndpointConfigName": "sweep-echo"}),
        ("sagemaker", "list_endpoint_configs", {}),
        ("sagemaker", "describe_endpoint", {"EndpointName": "sweep-echo"}),
        ("sagemaker", "list_endpoints", {}),
        ("sagemaker", "describe_compilation_job", {"CompilationJobName": "sweep-neo"}),
        ("sagemaker", "list_compilation_jobs", {}),
        ("sagemaker", "describe_labeling_job", {"LabelingJobName": "sweep-labeling"}),
        ("sagemaker", "list_labeling_jobs", {}),
        ("sagemaker", "describe_model_package", {"ModelPackageName": ids["model_package"]}),
        ("sagemaker", "list_model_packages", {"ModelPackageGroupName": "sweep-group"}),
        ("sagemaker", "describe_model_package_group", {"ModelPackageGroupName": "sweep-group"}),
        ("sagemaker", "list_model_package_groups", {}),
        ("batch", "describe_compute_environments", {}),
        ("batch", "describe_job_queues", {}),
        ("batch", "describe_job_definitions", {}),
        ("batch", "describe_jobs", {"jobs": [ids["batch_job"]]}),
        ("batch", "list_jobs", {"jobQueue": "sweep-q"}),
        ("emr", "describe_cluster", {"ClusterId": ids["cluster"]}),
        ("emr", "list_clusters", {}),
        ("emr", "describe_step", {"ClusterId": ids["cluster"], "StepId": ids["step"]}),
        ("emr", "list_steps", {"ClusterId": ids["cluster"]}),
        ("emr", "describe_security_configuration", {"Name": "sweep-sc"}),
        ("logs", "describe_log_groups", {}),
        ("logs", "describe_log_streams", {"logGroupName": "/aws/sagemaker/Endpoints/sweep-echo"}),
        ("iot", "describe_thing", {"thingName": "sweep-thing"}),
        ("iot", "list_things", {}),
        ("iot", "describe_thing_group", {"thingGroupName": "sweep-group"}),
        ("iot", "list_thing_groups", {}),
        ("iot", "describe_role_alias", {"roleAlias": "sweep-alias"}),
        ("iot", "describe_job", {"jobId": "sweep-job"}),
        ("iot", "list_jobs", {}),
        ("iot", "describe_job_execution", {"jobId": "sweep-job", "thingName": "sweep-thing"}),
        ("iot", "list_job_executions_for_job", {"jobId": "sweep-job"}),
        ("iot", "list_thing_principals", {"thingName": "sweep-thing"}),
        ("iam", "get_role", {"RoleName": "sweep-role"}),
        ("iam", "get_policy", {"PolicyArn": ids["policy"]}),
        ("kms", "describe_key", {"KeyId": ids["key"]}),
        ("secretsmanager", "get_secret_value", {"SecretId": "sweep-secret"}),
        ("secretsmanager", "describe_secret", {"SecretId": "sweep-secret"}),
        ("sqs", "get_queue_attributes", {"QueueUrl": ids["queue"], "AttributeNames": ["All"]}),
        ("s3", "get_bucket_notification_configuration", {"Bucket": BUCKET}),
        ("s3", "list_objects_v2", {"Bucket": BUCKET}),
        ("events", "list_rules", {}),
        ("events", "describe_rule", {"Name": "sweep-rule"}),
        ("ec2", "describe_subnets", {"SubnetIds": [ids["subnet"]]}),
        ("ec2", "describe_security_groups", {"GroupIds": [ids["group"]]}),
        ("application-autoscaling", "describe_scalable_targets", {"ServiceNamespace": "sagemaker"}),
        ("application-autoscaling", "describe_scaling_policies", {"ServiceNamespace": "sagemaker"}),
    ]
    return reads


def test_no_list_or_describe_call_the_pipelines_make_answers_500(fargate):
    from botocore.config import Config

    ids = _create_resources_the_pipelines_read(fargate)
    no_retry = Config(retries={"max_attempts": 1, "mode": "standard"})
    failures = []
    for service, operation, kwargs in _reads(ids):
        client = boto3.client(service, config=no_retry)
        try:
            getattr(client, operation)(**kwargs)
        except ClientError as error:
            status = error.response["ResponseMetadata"]["HTTPStatusCode"]
            failures.append(f"{service}.{operation}: HTTP {status} {error.response['Error']}")
    # Every call names a resource that exists: none may fail at all, a 5xx least of all.
    assert failures == []
