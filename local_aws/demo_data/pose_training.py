"""Demo data of `pose_training`: a tiny DeepLabCut project, zipped and uploaded under the watched prefix.

The project is what a lab would zip after `create_new_project` / `extract_frames` / `label_frames`: a
short synthetic video (MJPEG AVI) of two keypoints ("head", "tail") moving on circles, a few labeled
frames with their labels (`CollectedData_<scorer>.csv`, DeepLabCut's CSV format) and `config.yaml`.
It is generated in code (numpy, Pillow, PyYAML: all in Airflow's environment) and kept tiny so that a
CPU trains it in seconds.

The upload itself is what triggers the run: the bucket sends "Object Created" to EventBridge, whose
rule forwards it to the SQS queue the DAG's Asset watches (`ensure_event_path`). `make demo` therefore
does not trigger this DAG through the API (`TRIGGERED_BY_UPLOAD`): it waits for the run the upload starts.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

# `make demo` waits for the run this upload starts instead of triggering one (local_aws/stack/).
TRIGGERED_BY_UPLOAD = True

PROJECT = "tinymouse-orchard-2026-11-21"
SCORER = "orchard"
VIDEO = "tinymouse"
BODYPARTS = ("head", "tail")
WIDTH, HEIGHT = 96, 80
FRAMES = 16
LABELED_EVERY = 2  # 8 labeled frames


def keypoints(frame: int) -> dict[str, tuple[float, float]]:
    """Where the two keypoints are in `frame`: opposite ends of a bar turning around the centre."""
    import math

    angle = 2 * math.pi * frame / FRAMES
    cx, cy, radius = WIDTH / 2, HEIGHT / 2, 24.0
    head = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    tail = (cx - radius * math.cos(angle), cy - radius * math.sin(angle))
    return {"head": head, "tail": tail}


def render(frame: int):
    """One RGB frame (a PIL image): noisy background, a grey body, a red head and a blue tail."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(frame)
    background = rng.integers(30, 60, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    points = keypoints(frame)
    draw.line([points["head"], points["tail"]], fill=(150, 150, 150), width=5)
    for name, colour in (("head", (230, 40, 40)), ("tail", (40, 80, 230))):
        x, y = points[name]
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
    return image


def config_yaml(project_path: str = f"/home/dlc/projects/{PROJECT}") -> str:
    """The project's config.yaml, as `create_new_project` writes it (trimmed to what training reads)."""
    import yaml

    config = {
        "Task": "tinymouse",
        "scorer": SCORER,
        "date": "Nov21",
        "multianimalproject": False,
        "identity": None,
        "project_path": project_path,
        "engine": "pytorch",
        "video_sets": {f"{project_path}/videos/{VIDEO}.avi": {"crop": f"0, {WIDTH}, 0, {HEIGHT}"}},
        "bodyparts": list(BODYPARTS),
        "start": 0,
        "stop": 1,
        "numframes2pick": FRAMES // LABELED_EVERY,
        "skeleton": [list(BODYPARTS)],
        "skeleton_color": "black",
        "pcutoff": 0.6,
        "dotsize": 4,
        "alphavalue": 0.7,
        "colormap": "rainbow",
        "TrainingFraction": [0.75],
        "iteration": 0,
        "default_net_type": "resnet_50",
        "default_augmenter": "default",
        "snapshotindex": -1,
        "detector_snapshotindex": -1,
        "batch_size": 4,
        "cropping": False,
        "x1": 0,
        "x2": WIDTH,
        "y1": 0,
        "y2": HEIGHT,
        "corner2move2": [50, 50],
        "move2corner": True,
    }
    return yaml.safe_dump(config, sort_keys=False)


def labels_csv(frames: list[int]) -> str:
    """`CollectedData_<scorer>.csv`: DeepLabCut's three header rows and one row per labeled image."""
    columns = [bp for bp in BODYPARTS for _ in ("x", "y")]
    lines = [
        ",".join(["scorer", "", "", *([SCORER] * len(columns))]),
        ",".join(["bodyparts", "", "", *columns]),
        ",".join(["coords", "", "", *(["x", "y"] * len(BODYPARTS))]),
    ]
    for frame in frames:
        points = keypoints(frame)
        values = [f"{points[bp][axis]:.2f}" for bp in BODYPARTS for axis in (0, 1)]
        lines.append(",".join(["labeled-data", VIDEO, image_name(frame), *values]))
    return "\n".join(lines) + "\n"


def image_name(frame: int) -> str:
    return f"img{frame:03d}.png"


def mjpeg_avi(frames: list[Any], fps: int = 8) -> bytes:
    """A minimal MJPEG AVI (RIFF, one video stream, idx1 index) that OpenCV and ffmpeg read."""
    jpegs = []
    for image in frames:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    width, height = frames[0].size

    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def riff_list(kind: bytes, data: bytes) -> bytes:
        return chunk(b"LIST", kind + data)

    biggest = max(len(j) for j in jpegs)
    avih = struct.pack(
        "<14I", 1_000_000 // fps, biggest * fps, 0, 0x10, len(jpegs), 0, 1, biggest, width, height, 0, 0, 0, 0
    )
    strh = b"vidsMJPG" + struct.pack(
        "<IHHIIIIIIIIhhhh", 0, 0, 0, 0, 1, fps, 0, len(jpegs), biggest, 0xFFFFFFFF, 0, 0, 0, width, height
    )
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    header = riff_list(
        b"hdrl", chunk(b"avih", avih) + riff_list(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf))
    )
    movi_chunks, index, offset = [], [], 4
    for jpeg in jpegs:
        data = chunk(b"00dc", jpeg)
        index.append(struct.pack("<4sIII", b"00dc", 0x10, offset, len(jpeg)))
        movi_chunks.append(data)
        offset += len(data)
    movi = riff_list(b"movi", b"".join(movi_chunks))
    return chunk(b"RIFF", b"AVI " + header + movi + chunk(b"idx1", b"".join(index)))


def project_files(root: str = PROJECT) -> Iterator[tuple[str, bytes]]:
    """(path in the zip, content) of every file of the tiny project, under the folder `root`."""
    images = [render(frame) for frame in range(FRAMES)]
    labeled = list(range(0, FRAMES, LABELED_EVERY))
    yield f"{root}/config.yaml", config_yaml().encode()
    yield f"{root}/videos/{VIDEO}.avi", mjpeg_avi(images)
    for frame in labeled:
        buffer = io.BytesIO()
        images[frame].save(buffer, format="PNG")
        yield f"{root}/labeled-data/{VIDEO}/{image_name(frame)}", buffer.getvalue()
    yield f"{root}/labeled-data/{VIDEO}/CollectedData_{SCORER}.csv", labels_csv(labeled).encode()


def project_zip(files: Iterator[tuple[str, bytes]] | None = None) -> bytes:
    """The project zipped as `zip -r` would (tests pass altered `files` to build broken projects)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files if files is not None else project_files():
            archive.writestr(name, content)
    return buffer.getvalue()


def upload(s3_client: Any, settings: Any) -> dict:
    """What ops do once on AWS (Batch roles, the event path), then the lab's upload: the run starts."""
    from orchard.pose_training import infra as pose_infra

    iam, events, sqs = (_client_like(s3_client, name) for name in ("iam", "events", "sqs"))
    create_batch_roles(iam, settings)
    pose_infra.ensure_event_path(s3_client, events, sqs, settings, log=lambda line: None)
    key = f"{pose_infra.WATCHED_PREFIX}{PROJECT}.zip"
    s3_client.put_object(Bucket=settings.data_bucket, Key=key, Body=project_zip(), Metadata=SANDBOX_TRAINING)
    # the conf to re-run it by hand (`make up`), with the same settings as the upload's metadata
    return {
        "project_uri": f"s3://{settings.data_bucket}/{key}",
        "epochs": 2,
        "batch_size": 4,
        "backbone_weights": "none",
        "train_crop": "96x80",
        "poll_seconds": 2,
    }


# Training settings the upload carries as S3 object metadata (x-amz-meta-*): a run started by the upload
# takes them over the DAG's defaults. Offline, from scratch; tiny, so a CPU trains it in seconds.
SANDBOX_TRAINING = {"epochs": "2", "batch-size": "4", "backbone-weights": "none", "train-crop": "96x80"}


def create_batch_roles(iam: Any, settings: Any) -> None:
    """The Batch service role and instance profile the settings name, as ops create them once on AWS."""
    trust = '{"Version": "2012-10-17", "Statement": []}'
    for arn in (settings.batch_service_role_arn, settings.batch_job_role_arn):
        name = arn.rsplit("/", 1)[-1]
        try:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
    profile = settings.batch_instance_role_arn.rsplit("/", 1)[-1]
    try:
        iam.create_instance_profile(InstanceProfileName=profile)
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def _client_like(s3_client: Any, service: str) -> Any:
    """A sandbox client of `service` on the same endpoint and region as `s3_client`."""
    from local_aws import sandbox_client

    return sandbox_client(service, s3_client.meta.endpoint_url, s3_client.meta.region_name)
