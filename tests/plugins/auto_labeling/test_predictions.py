"""orchard.auto_labeling.predictions: the shards' records → answers and failures in S3 → the manifest of the
answered frames, its label categories and worker template."""

from __future__ import annotations

import json

import boto3
import pytest

BUCKET = "orchard-artifacts"
BASE = f"s3://{BUCKET}/auto_labeling/run-1/"
RESPONSE = {
    "model": "opencv-hog-people-detector",
    "image_size": {"width": 640, "height": 360, "depth": 3},
    "detections": [
        {"label": "pedestrian", "box": [10, 20, 40, 80], "score": 0.9},
        {"label": "pedestrian", "box": [100, 20, 40, 80], "score": 0.3},  # below the threshold
    ],
}
PLAN = {
    "conn_id": "aws_default",
    "owned": False,  # no endpoint to describe for its lifetime
    "base_uri": BASE,
    "model_id": "m",
    "categories": ["pedestrian"],
    "threshold": 0.5,
    "labeling_job_name": "job-1",
    "mode": "verify",
}


def put(s3, key: str, body) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())
    return f"s3://{BUCKET}/{key}"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def test_answers_and_failures_are_collected_and_the_answered_frames_make_the_manifest(s3):
    from orchard.auto_labeling.predictions import PRELABEL_ATTRIBUTE, build_manifest, collect_predictions

    output = put(s3, "out/a.out", RESPONSE)
    results = [
        {"status": "answered", "input": "s3://data/a.png", "output": output},
        {"status": "failed", "input": "s3://data/b.png", "reason": "not a decodable image"},
        {"status": "failed", "input": "s3://data/c.png", "unanswered": True},
    ]
    record = put(s3, "invocations/shard-00000.record.json", {"results": results})

    collected = collect_predictions([{"record_uri": record}], PLAN)

    assert (collected["answered"], collected["failed"], collected["unanswered"]) == (1, 2, 1)
    assert collected["missing"] == ["s3://data/b.png", "s3://data/c.png"]
    failures = json.loads(
        s3.get_object(Bucket=BUCKET, Key=collected["failures_uri"].split("/", 3)[3])["Body"].read()
    )
    assert [f["reason"] for f in failures] == ["not a decodable image", "no answer"]

    built = build_manifest(PLAN, collected)

    assert (built["lines"], built["boxes"], built["models"]) == (1, 1, ["opencv-hog-people-detector"])
    [line] = (
        s3.get_object(Bucket=BUCKET, Key=built["manifest_uri"].split("/", 3)[3])["Body"].read().splitlines()
    )
    assert json.loads(line)["source-ref"] == "s3://data/a.png"
    assert json.loads(line)[PRELABEL_ATTRIBUTE]["image_size"] == [{"width": 640, "height": 360, "depth": 3}]
    for uri in (built["categories_uri"], built["template_uri"]):
        assert s3.head_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["ContentLength"] > 0


def test_no_answered_frame_leaves_nothing_to_label(s3):
    from orchard.auto_labeling.predictions import build_manifest

    collected = {
        "predictions_uri": put(s3, "invocations/answered.json", []),
        "failed": 3,
        "failures_uri": f"{BASE}invocations/failures.json",
    }
    with pytest.raises(RuntimeError, match="no frame was answered \\(3 failed: see .*failures.json\\)"):
        build_manifest(PLAN, collected)


def test_collecting_reads_no_settings_and_the_shards_records_at_once_on_one_session(
    s3, reads, sessions_built, in_flight
):
    """collect_predictions and build_manifest are on the critical path (issue 17.1): their clients come from
    the plan's connection (no settings read), S3 and SageMaker (the endpoint's lifetime) share one session,
    the shards' records are read at once and the files written at once."""
    from orchard.auto_labeling.predictions import build_manifest, collect_predictions

    output = put(s3, "out/a.out", RESPONSE)
    summaries = [
        {"record_uri": put(s3, f"invocations/shard-{index:05d}.record.json", {"results": [result]})}
        for index, result in enumerate(
            [
                {"status": "answered", "input": "s3://data/a.png", "output": output},
                {"status": "answered", "input": "s3://data/b.png", "output": output},
                {"status": "failed", "input": "s3://data/c.png", "reason": "not a decodable image"},
            ]
        )
    ]
    plan = {**PLAN, "owned": True, "endpoint_name": "auto-labeling-gone"}  # described for its lifetime

    collected = collect_predictions(summaries, plan)

    assert (collected["answered"], collected["failed"], collected["endpoint_seconds"]) == (2, 1, 0.0)
    assert (reads.settings, len(sessions_built)) == (0, 1)
    assert in_flight.peak["DescribeEndpoint"] == 1
    assert (in_flight.peak["GetObject"], in_flight.peak["PutObject"]) == (3, 2)

    in_flight.peak.clear()
    assert build_manifest(plan, collected)["lines"] == 2
    assert reads.settings == 0
    assert in_flight.peak["PutObject"] == 3  # the manifest, its label categories and worker template
