"""Demo data for auto_labeling: generated road-scene frames with pedestrians, and the detector's model.tar.gz.

Frames are drawn in code (sky, road, lane marks, 1–3 pedestrian silhouettes, sensor noise): OpenCV's
pretrained HOG people detector finds most silhouettes, misses some and now and then sees a person in
the scenery, as on real footage. `model.tar.gz` holds what SageMaker's framework inference containers
expect: `code/inference.py` + `code/requirements.txt` (from include/auto_labeling/) and `detector.json`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from local_aws.s3io import tar_gz

JOB_FOLDER = Path(__file__).resolve().parents[2] / "include" / "auto_labeling"
DEMO_FRAMES = 300
FRAMES_PREFIX = "auto_labeling/frames/"
MODEL_KEY = "auto_labeling/model/model.tar.gz"
DETECTOR_SETTINGS = {"win_stride": 8, "padding": 8, "scale": 1.05, "label": "pedestrian"}
WORKTEAM = "orchard-labelers"  # the DAG's default workteam_arn names it
# What Ground Truth needs on a bucket of input images (https://docs.aws.amazon.com/sagemaker/latest/dg/
# sms-cors-update.html), as a user sets it once: `aws s3api put-bucket-cors`.
GROUND_TRUTH_CORS = {
    "CORSRules": [
        {"AllowedHeaders": [], "AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "ExposeHeaders": []}
    ]
}


def frame(seed: int, width: int = 640, height: int = 360) -> tuple[bytes, list[list[int]]]:
    """A PNG road scene and the boxes [left, top, width, height] of the pedestrians drawn in it."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (150, 180, 215))
    draw = ImageDraw.Draw(image)
    horizon = int(height * 0.45)
    draw.rectangle([0, horizon, width, height], fill=(95, 95, 100))
    draw.polygon(
        [(width * 0.45, horizon), (width * 0.55, horizon), (width * 0.9, height), (width * 0.1, height)],
        fill=(70, 70, 75),
    )
    for y in range(horizon + 10, height, 30):
        draw.rectangle([width / 2 - 2, y, width / 2 + 2, y + 12], fill=(230, 230, 230))
    boxes = [_pedestrian(draw, rng, width, height, horizon) for _ in range(int(rng.integers(1, 4)))]
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(1.0))).astype(np.int16)
    noisy = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "PNG")
    return out.getvalue(), boxes


def _pedestrian(draw: Any, rng: Any, width: int, height: int, horizon: int) -> list[int]:
    tall = int(rng.integers(150, 230))
    wide = tall // 2
    left = int(rng.integers(10, width - wide - 10))
    top = int(min(height - tall - 2, horizon + rng.integers(-60, 40)))
    colour = tuple(int(v) for v in rng.integers(10, 60, 3))
    centre, head = left + wide // 2, tall // 14
    draw.ellipse([centre - head, top + tall * 0.06, centre + head, top + tall * 0.06 + 2 * head], fill=colour)
    draw.rectangle(
        [centre - wide * 0.22, top + tall * 0.2, centre + wide * 0.22, top + tall * 0.55], fill=colour
    )
    for side in (-1, 1):
        draw.line(
            [centre + side * wide * 0.22, top + tall * 0.22, centre + side * wide * 0.32, top + tall * 0.5],
            fill=colour,
            width=max(3, wide // 10),
        )
        draw.line(
            [centre + side * wide * 0.1, top + tall * 0.55, centre + side * wide * 0.16, top + tall * 0.92],
            fill=colour,
            width=max(4, wide // 8),
        )
    return [left, top, wide, tall]


def model_tarball(settings: dict[str, Any] | None = None) -> bytes:
    """model.tar.gz in SageMaker's framework-container layout."""
    members = {
        "detector.json": json.dumps(settings or DETECTOR_SETTINGS).encode(),
        "code/inference.py": (JOB_FOLDER / "inference.py").read_bytes(),
        "code/requirements.txt": (JOB_FOLDER / "requirements.txt").read_bytes(),
    }
    return tar_gz(members)


def upload_frames(s3_client: Any, bucket: str, prefix: str, count: int, first_seed: int = 0) -> list[str]:
    keys = []
    for seed in range(first_seed, first_seed + count):
        body, _boxes = frame(seed)
        key = f"{prefix}frame-{seed:05d}.png"
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")
        keys.append(key)
    return keys


def prepare_ground_truth(s3_client: Any, sagemaker_client: Any, frames_bucket: str) -> str:
    """What a Ground Truth user sets up once: the frames bucket's CORS rule and a private workteam.
    Returns the workteam's ARN."""
    s3_client.put_bucket_cors(Bucket=frames_bucket, CORSConfiguration=GROUND_TRUTH_CORS)
    try:
        return sagemaker_client.describe_workteam(WorkteamName=WORKTEAM)["Workteam"]["WorkteamArn"]
    except sagemaker_client.exceptions.ClientError:
        pass
    return sagemaker_client.create_workteam(
        WorkteamName=WORKTEAM,
        Description="orchard demo labelers (no human works in the sandbox)",
        MemberDefinitions=[
            {
                "CognitoMemberDefinition": {
                    "UserPool": f"{sagemaker_client.meta.region_name}_orchard",
                    "UserGroup": "labelers",
                    "ClientId": "orchard-demo",
                }
            }
        ],
    )["WorkteamArn"]


def upload(s3_client: Any, settings: Any) -> dict:
    import local_aws

    bucket = settings.data_bucket
    upload_frames(s3_client, bucket, FRAMES_PREFIX, DEMO_FRAMES)
    s3_client.put_object(Bucket=bucket, Key=MODEL_KEY, Body=model_tarball())
    sagemaker = local_aws.sandbox_client("sagemaker", s3_client.meta.endpoint_url, settings.region)
    workteam_arn = prepare_ground_truth(s3_client, sagemaker, bucket)
    return {
        "frames_prefix": f"s3://{bucket}/{FRAMES_PREFIX}",
        "model_data_uri": f"s3://{bucket}/{MODEL_KEY}",
        "frames_per_shard": 50,
        "workteam_arn": workteam_arn,
        "poll_seconds": 2,  # the sandbox's endpoint and labeling job are ready in seconds: poll at that pace
    }
