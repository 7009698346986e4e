"""A small valid input for auto_labeling's plan: the params of a run and the sandbox data they point at."""

from __future__ import annotations

import boto3
import pytest

from tests.local_aws.test_async_endpoints_and_labeling import BUCKET

PARAMS = {
    "frames_prefix": f"s3://{BUCKET}/frames/",
    "model_id": "m",
    "model_data_uri": f"s3://{BUCKET}/model.tar.gz",
    "image_uri": "",
    "existing_endpoint_name": "",
    "instance_type": "ml.m5.xlarge",
    "max_instances": 2,
    "max_concurrent_invocations_per_instance": 4,
    "frames_per_shard": 2,
    "max_frames": 5,
    "score_threshold": 0.5,
    "label_categories": ["pedestrian"],
    "labeling_mode": "verify",
    "workteam_arn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/orchard-labelers",
    "model_format": "orchard",
    "stop_at_manifest": False,
}


CORS = {"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}


RUN_ID = "manual__2026-11-21T10:00:00+00:00"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def data(aws):
    s3 = boto3.client("s3")
    for bucket in (BUCKET, "orchard-artifacts"):
        s3.create_bucket(Bucket=bucket)
    for index in range(7):  # the PNG signature: validation reads each frame's first bytes
        s3.put_object(Bucket=BUCKET, Key=f"frames/{index}.png", Body=PNG_SIGNATURE + b"rest")
    s3.put_object(Bucket=BUCKET, Key="frames/notes.txt", Body=b"not a frame")
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=b"tar")
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=CORS)
    boto3.client("sagemaker").create_workteam(
        WorkteamName="orchard-labelers",
        Description="labelers",
        MemberDefinitions=[
            {"CognitoMemberDefinition": {"UserPool": "us-east-1_a", "UserGroup": "g", "ClientId": "c"}}
        ],
    )
    return s3
