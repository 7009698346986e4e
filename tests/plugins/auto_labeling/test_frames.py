"""orchard.auto_labeling.frames: a frames prefix is a folder, and every frame is checked before billing."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.local_aws.test_async_endpoints_and_labeling import BUCKET
from tests.plugins.auto_labeling.inputs import PARAMS, PNG_SIGNATURE, RUN_ID


def test_frames_prefix_is_a_folder_not_a_name_start(data):
    """Issue 13.7: `.../frames` reads frames/ (and its sub-folders), never frames10/ or frames-old/."""
    from orchard.auto_labeling.plan import plan_run

    for key in ("frames10/a.png", "frames-old/b.png", "frames/sub/c.png"):
        data.put_object(Bucket=BUCKET, Key=key, Body=PNG_SIGNATURE)
    plan = plan_run(
        {**PARAMS, "frames_prefix": f"s3://{BUCKET}/frames", "max_frames": 100}, "auto_labeling", RUN_ID
    )
    listed = [
        uri
        for shard in plan["shards"]
        for uri in json.loads(
            data.get_object(Bucket="orchard-artifacts", Key=shard["frames_uri"].split("/", 3)[3])[
                "Body"
            ].read()
        )
    ]
    assert plan["frames_prefix"] == f"s3://{BUCKET}/frames/"
    assert plan["frames"] == 8 and f"s3://{BUCKET}/frames/sub/c.png" in listed
    assert not [uri for uri in listed if "frames10/" in uri or "frames-old/" in uri]


def test_empty_and_undecodable_frames_are_refused_naming_their_s3_uris(data):
    """Issue 13.9: a 0-byte frame (and one that is not the image its suffix says) is refused in
    validation, naming its S3 URI and the fix, before any endpoint; not the model's OpenCV text later."""
    from orchard.auto_labeling.plan import plan_run
    from orchard.errors import InputError

    data.put_object(Bucket=BUCKET, Key="frames/0-empty.png", Body=b"")
    data.put_object(Bucket=BUCKET, Key="frames/0-gif.jpg", Body=b"GIF89a....")
    with pytest.raises(InputError) as refused:
        plan_run(PARAMS, "auto_labeling", RUN_ID)
    message = str(refused.value)
    assert f"s3://{BUCKET}/frames/0-empty.png is empty (0 bytes)" in message
    assert f"s3://{BUCKET}/frames/0-gif.jpg is not a JPG image" in message
    assert "Re-upload them" in message and "imdecode" not in message
    assert boto3.client("sagemaker").list_models()["Models"] == []
