"""The sandbox's async endpoints (real handler runs, outputs and failures in S3), labeling jobs and API latency."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws.demo_data import auto_labeling as demo
from local_aws.s3io import tar_gz
from tests.local_aws.polling import watch_states

BUCKET = "async-bucket"
PYTORCH_INFERENCE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
ROLE = "arn:aws:iam::123456789012:role/x"


@pytest.fixture
def sagemaker(aws):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return boto3.client("sagemaker")


def deploy(sagemaker, name="detector", model_data=None, async_config=True):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=model_data or demo.model_tarball())
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": PYTORCH_INFERENCE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"},
    )
    config = (
        {
            "AsyncInferenceConfig": {
                "OutputConfig": {
                    "S3OutputPath": f"s3://{BUCKET}/out/",
                    "S3FailurePath": f"s3://{BUCKET}/fail/",
                }
            }
        }
        if async_config
        else {}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
        **config,
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return watch_states(
        lambda: sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"], {"InService", "Failed"}
    )


def wait_for(bucket, key, timeout_s=60):
    s3 = boto3.client("s3")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            time.sleep(0.1)
    raise TimeoutError(f"s3://{bucket}/{key} never appeared")


def test_an_async_endpoint_runs_the_handler_and_writes_outputs_and_failures(sagemaker):
    s3, runtime = boto3.client("s3"), boto3.client("sagemaker-runtime")
    assert deploy(sagemaker) == ["Creating", "InService"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName="detector")
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3FailurePath"] == f"s3://{BUCKET}/fail/"
    png, _boxes = demo.frame(3)
    s3.put_object(Bucket=BUCKET, Key="in/frame.png", Body=png)
    s3.put_object(Bucket=BUCKET, Key="in/broken.png", Body=b"garbage")

    answers = {
        key: runtime.invoke_endpoint_async(
            EndpointName="detector",
            InputLocation=f"s3://{BUCKET}/in/{key}",
            ContentType="image/png",
            InferenceId=f"id-{i}",
        )
        for i, key in enumerate(["frame.png", "broken.png", "missing.png"])
    }

    assert answers["frame.png"]["InferenceId"] == "id-0"
    output = answers["frame.png"]["OutputLocation"]
    assert output.startswith(f"s3://{BUCKET}/out/") and output.endswith(".out")
    result = json.loads(wait_for(BUCKET, output.split("/", 3)[3]))
    assert result["model"] == "opencv-hog-people-detector" and result["detections"]
    broken = answers["broken.png"]["FailureLocation"]
    assert broken.startswith(f"s3://{BUCKET}/fail/") and broken.endswith("-error.out")
    assert b"not a decodable image" in wait_for(BUCKET, broken.split("/", 3)[3])
    assert b"NoSuchKey" in wait_for(BUCKET, answers["missing.png"]["FailureLocation"].split("/", 3)[3])
    logs = boto3.client("logs").filter_log_events(logGroupName="/aws/sagemaker/Endpoints/detector")["events"]
    assert any("answered id-0" in e["message"] for e in logs)

    sagemaker.delete_endpoint(EndpointName="detector")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    with pytest.raises(ClientError, match="not found"):
        runtime.invoke_endpoint_async(EndpointName="detector", InputLocation=f"s3://{BUCKET}/in/frame.png")


def test_an_endpoint_whose_model_does_not_load_fails_with_the_reason(sagemaker):
    code = b"def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n"

    assert deploy(sagemaker, "broken", model_data=tar_gz({"code/inference.py": code})) == [
        "Creating",
        "Failed",
    ]
    reason = sagemaker.describe_endpoint(EndpointName="broken")["FailureReason"]
    assert "ping health check" in reason and "weights are corrupt" in reason


def test_a_second_endpoint_with_the_same_name_is_refused(sagemaker):
    deploy(sagemaker)
    with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
        sagemaker.create_endpoint(EndpointName="detector", EndpointConfigName="detector")


def test_api_latency_applies_to_every_request_and_concurrent_callers_wait_together(aws, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    clients = [boto3.client("s3") for _ in range(4)]  # made before timing: building a client takes ~0.3 s
    for client in clients:
        client.list_buckets()  # connections warm
    monkeypatch.setenv("ORCHARD_SANDBOX_LATENCY_MS", "200")
    started = time.perf_counter()
    clients[0].list_buckets()
    one = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda client: client.list_buckets(), clients))
    four = time.perf_counter() - started
    # Every request waits the latency; four at once wait it together, not one after another (>= 0.8 s).
    assert 0.2 <= one < 0.6 and 0.2 <= four < 0.2 * 4


# ------------------------------------------------------------------------------- labeling jobs


def labeling_request(name, mode="Verification", manifest_uri=f"s3://{BUCKET}/manifest/in.manifest", **task):
    return {
        "LabelingJobName": name,
        "LabelAttributeName": "checked",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": manifest_uri}}},
        "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/labeling/"},
        "RoleArn": ROLE,
        "LabelCategoryConfigS3Uri": f"s3://{BUCKET}/manifest/categories.json",
        "HumanTaskConfig": {
            # The public workforce's team exists in every Ground Truth region; a private one must be created.
            "WorkteamArn": "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
            "UiConfig": {"UiTemplateS3Uri": f"s3://{BUCKET}/manifest/{mode}.liquid"},
            "PreHumanTaskLambdaArn": f"arn:aws:lambda:us-east-1:432418664414:function:PRE-{mode}BoundingBox",
            "TaskTitle": "t",
            "TaskDescription": "d",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 300,
            "TaskAvailabilityLifetimeInSeconds": 30 * 24 * 3600,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": f"arn:aws:lambda:us-east-1:432418664414:function:ACS-{mode}BoundingBox"
            },
            **task,
        },
    }


@pytest.fixture
def manifest_in_s3(sagemaker):
    s3 = boto3.client("s3")
    line = {
        "source-ref": f"s3://{BUCKET}/f.png",
        "pre": {
            "image_size": [{"width": 4, "height": 4, "depth": 3}],
            "annotations": [{"class_id": 0, "left": 0, "top": 0, "width": 2, "height": 2}],
        },
        "pre-metadata": {
            "objects": [{"confidence": 0.9}],
            "class-map": {"0": "pedestrian"},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
        },
    }
    s3.put_object(Bucket=BUCKET, Key="manifest/in.manifest", Body=(json.dumps(line) + "\n") * 3)
    put_categories(["pedestrian"])
    put_templates()
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": GROUND_TRUTH_CORS})
    sagemaker.create_workteam(
        WorkteamName="team",
        Description="labelers",
        MemberDefinitions=[
            {
                "CognitoMemberDefinition": {
                    "UserPool": "us-east-1_abc",
                    "UserGroup": "labelers",
                    "ClientId": "client",
                }
            }
        ],
    )
    return sagemaker


GROUND_TRUTH_CORS = [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]


def put_categories(labels):
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key="manifest/categories.json",
        Body=json.dumps({"document-version": "2018-11-28", "labels": [{"label": x} for x in labels]}),
    )


def put_templates(verification=None):
    """The pipeline's own templates (plugins/orchard/auto_labeling/manifest.py) for the 'pre' attribute."""
    from orchard.auto_labeling import manifest

    s3 = boto3.client("s3")
    for mode, key in (("verify", "Verification"), ("adjust", "Adjustment")):
        body = verification if mode == "verify" and verification else manifest.worker_template(mode, "pre")
        s3.put_object(Bucket=BUCKET, Key=f"manifest/{key}.liquid", Body=body)


def ended(sagemaker, name):
    watch_states(
        lambda: sagemaker.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"],
        {"Failed", "Completed"},
    )
    return sagemaker.describe_labeling_job(LabelingJobName=name)


@pytest.mark.parametrize("mode", ["Verification", "Adjustment"])
def test_a_labeling_job_completes_under_the_auto_accept_policy(manifest_in_s3, mode):
    sagemaker = manifest_in_s3
    sagemaker.create_labeling_job(**labeling_request("job-1", mode))

    states = watch_states(
        lambda: sagemaker.describe_labeling_job(LabelingJobName="job-1")["LabelingJobStatus"],
        {"Completed", "Failed"},
    )

    assert states == ["InProgress", "Completed"]
    job = sagemaker.describe_labeling_job(LabelingJobName="job-1")
    assert job["LabelCounters"]["TotalLabeled"] == 3 and job["LabelCounters"]["HumanLabeled"] == 0
    output = job["LabelingJobOutput"]["OutputDatasetS3Uri"]
    assert output == f"s3://{BUCKET}/labeling/job-1/manifests/output/output.manifest"
    lines = [json.loads(line) for line in wait_for(BUCKET, output.split("/", 3)[3]).splitlines()]
    assert all(line["checked-metadata"]["human-annotated"] == "no" for line in lines)
    if mode == "Verification":
        assert lines[0]["checked"] == 0 and lines[0]["checked-metadata"]["class-name"] == "good"
    else:
        assert (
            lines[0]["checked"] == lines[0]["pre"]
            and lines[0]["checked-metadata"]["adjustment-status"] == "unadjusted"
        )
    policy = wait_for(BUCKET, "labeling/job-1/annotations/auto-accept-policy.txt").decode()
    assert "no human saw these images" in policy
    assert [j["LabelingJobName"] for j in sagemaker.list_labeling_jobs()["LabelingJobSummaryList"]] == [
        "job-1"
    ]


def test_labeling_jobs_are_validated_stopped_and_unique(manifest_in_s3):
    sagemaker = manifest_in_s3
    with pytest.raises(ClientError, match="TaskAvailabilityLifetimeInSeconds"):
        sagemaker.create_labeling_job(
            **labeling_request("too-long", TaskAvailabilityLifetimeInSeconds=31 * 24 * 3600)
        )
    sagemaker.create_labeling_job(**labeling_request("job-2"))
    with pytest.raises(ClientError, match="already exists"):
        sagemaker.create_labeling_job(**labeling_request("job-2"))
    sagemaker.stop_labeling_job(LabelingJobName="job-2")
    states = watch_states(
        lambda: sagemaker.describe_labeling_job(LabelingJobName="job-2")["LabelingJobStatus"],
        {"Stopped", "Completed"},
    )
    assert states[-1] == "Stopped"
    assert sagemaker.list_labeling_jobs(StatusEquals="Completed")["LabelingJobSummaryList"] == []
    with pytest.raises(ClientError, match="Could not find labeling job"):
        sagemaker.describe_labeling_job(LabelingJobName="nope")


def test_a_task_type_that_cannot_be_auto_accepted_fails_saying_so(manifest_in_s3):
    sagemaker = manifest_in_s3
    request = labeling_request("draw")
    request["HumanTaskConfig"]["PreHumanTaskLambdaArn"] = (
        "arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox"
    )
    sagemaker.create_labeling_job(**request)
    watch_states(
        lambda: sagemaker.describe_labeling_job(LabelingJobName="draw")["LabelingJobStatus"],
        {"Failed", "Completed"},
    )
    assert "cannot" in sagemaker.describe_labeling_job(LabelingJobName="draw")["FailureReason"]


def test_labeling_is_refused_in_a_region_without_ground_truth(manifest_in_s3):
    paris = boto3.client("sagemaker", region_name="eu-west-3")
    request = labeling_request("paris")
    request["HumanTaskConfig"]["WorkteamArn"] = (
        "arn:aws:sagemaker:eu-west-3:123456789012:workteam/private-crowd/t"
    )
    with pytest.raises(ClientError, match="Ground Truth is not available in eu-west-3"):
        paris.create_labeling_job(**request)
    # Task functions of another region are refused too: they are not this region's built-in ones.
    request = labeling_request("ohio-functions")
    request["HumanTaskConfig"]["PreHumanTaskLambdaArn"] = (
        "arn:aws:lambda:us-east-2:266458841044:function:PRE-VerificationBoundingBox"
    )
    with pytest.raises(ClientError, match="not one of Ground Truth's built-in functions of us-east-1"):
        manifest_in_s3.create_labeling_job(**request)


def test_a_workteam_that_does_not_exist_is_refused(manifest_in_s3):
    request = labeling_request("no-team")
    request["HumanTaskConfig"]["WorkteamArn"] = (
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/nobody"
    )
    with pytest.raises(ClientError, match="Workteam .*nobody does not exist"):
        manifest_in_s3.create_labeling_job(**request)
    with pytest.raises(ClientError, match="Workteam nobody does not exist"):
        manifest_in_s3.describe_workteam(WorkteamName="nobody")
    team = manifest_in_s3.describe_workteam(WorkteamName="team")["Workteam"]
    assert team["WorkteamArn"] == "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team"
    request["HumanTaskConfig"]["WorkteamArn"] = team["WorkteamArn"]  # the team that exists: accepted
    manifest_in_s3.create_labeling_job(**request)
    assert ended(manifest_in_s3, "no-team")["LabelingJobStatus"] == "Completed"
    assert [t["WorkteamName"] for t in manifest_in_s3.list_workteams()["Workteams"]] == ["team"]


def test_input_images_in_a_bucket_without_the_cors_rule_fail_the_job(manifest_in_s3):
    boto3.client("s3").delete_bucket_cors(Bucket=BUCKET)
    manifest_in_s3.create_labeling_job(**labeling_request("no-cors"))
    job = ended(manifest_in_s3, "no-cors")
    assert job["LabelingJobStatus"] == "Failed"
    assert f"s3://{BUCKET} cannot be shown to workers" in job["FailureReason"]
    assert "CORS" in job["FailureReason"]


def test_a_verification_job_needs_the_original_labels_and_a_verification_template(manifest_in_s3):
    put_categories(["good", "bad"])  # grades are not the original job's labels
    manifest_in_s3.create_labeling_job(**labeling_request("grades-as-labels"))
    job = ended(manifest_in_s3, "grades-as-labels")
    assert job["LabelingJobStatus"] == "Failed" and "lacks ['pedestrian']" in job["FailureReason"]

    put_categories(["pedestrian"])
    from orchard.auto_labeling import manifest

    put_templates(verification=manifest.worker_template("adjust", "pre"))  # boxes workers can change
    manifest_in_s3.create_labeling_job(**labeling_request("adjust-template"))
    job = ended(manifest_in_s3, "adjust-template")
    assert job["LabelingJobStatus"] == "Failed" and "crowd-image-classifier" in job["FailureReason"]


def test_a_bad_latency_setting_is_refused_with_the_fix(monkeypatch):
    from local_aws.latency import latency_s

    monkeypatch.setenv("ORCHARD_SANDBOX_LATENCY_MS", "fast")
    with pytest.raises(ValueError, match="number of milliseconds"):
        latency_s()
    monkeypatch.setenv("ORCHARD_SANDBOX_LATENCY_MS", "50")
    assert latency_s() == 0.05


def test_the_demo_data_prepares_what_ground_truth_needs(aws, monkeypatch):
    """`make demo`'s upload sets the frames bucket's CORS rule and creates the DAG's default workteam."""
    from types import SimpleNamespace

    monkeypatch.setattr(demo, "DEMO_FRAMES", 2)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="demo-frames")
    conf = demo.upload(s3, SimpleNamespace(data_bucket="demo-frames", region="us-east-1"))

    assert conf["workteam_arn"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/orchard-labelers"
    )
    [rule] = s3.get_bucket_cors(Bucket="demo-frames")["CORSRules"]
    assert rule["AllowedMethods"] == ["GET"] and rule["AllowedOrigins"] == ["*"]
    again = demo.upload(s3, SimpleNamespace(data_bucket="demo-frames", region="us-east-1"))
    assert again["workteam_arn"] == conf["workteam_arn"]  # a second demo finds the team


def test_an_answer_whose_workspace_was_removed_by_a_stop_is_dropped_quietly(tmp_path):
    """DeleteEndpoint (or the sandbox stopping) removes the runtime's workspace while the model may still be
    answering: the reader drops that answer, as AWS drops the result of a deleted endpoint, instead of dying
    on the missing output file. Without a stop, a missing output is still an error."""
    import threading
    import types

    from local_aws import async_endpoints

    def runtime_answering(stopped: bool):
        runtime = async_endpoints.EndpointRuntime.__new__(async_endpoints.EndpointRuntime)
        runtime.requests = tmp_path / "gone"  # no <id>.out here: the workspace was discarded
        runtime.stop = threading.Event()
        if stopped:
            runtime.stop.set()
        runtime.in_flight = {
            "id-1": types.SimpleNamespace(inference_id="id-1", done=threading.Event(), answer=None)
        }
        answer = async_endpoints.ANSWER_PREFIX + json.dumps({"id": "id-1", "ok": True}) + "\n"
        runtime.process = types.SimpleNamespace(stdout=iter([answer]))
        return runtime

    stopped = runtime_answering(stopped=True)
    stopped._read_answers()
    assert stopped.in_flight == {}

    with pytest.raises(FileNotFoundError):
        runtime_answering(stopped=False)._read_answers()
