"""Pedestrian detector served in the SageMaker inference toolkit convention.

model_fn / input_fn / predict_fn / output_fn, as SageMaker's framework containers call them. The
detector is OpenCV's pretrained HOG + linear SVM people detector (the weights ship in the
opencv-python-headless wheel, so nothing is downloaded). `model.tar.gz` carries `detector.json`:
the detection settings, not weights. The response is this handler's own format (see output_fn);
`plugins/orchard/auto_labeling/manifest.py` (Airflow side) also reads the JumpStart Mask R-CNN response.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

MODEL_NAME = "opencv-hog-people-detector"
DEFAULT_SETTINGS = {"win_stride": 8, "padding": 8, "scale": 1.05, "label": "pedestrian"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "application/x-image"}


def model_fn(model_dir: str) -> dict:
    settings_file = Path(model_dir) / "detector.json"
    settings = {
        **DEFAULT_SETTINGS,
        **(json.loads(settings_file.read_text()) if settings_file.exists() else {}),
    }
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return {"hog": hog, "settings": settings}


def input_fn(body: bytes, content_type: str) -> np.ndarray:
    if content_type.split(";")[0].strip() not in IMAGE_TYPES:
        raise ValueError(
            f"unsupported content type {content_type!r}: send an image ({', '.join(sorted(IMAGE_TYPES))})"
        )
    # OpenCV answers an empty buffer with its own assertion text ("!buf.empty() in function 'imdecode_'")
    # and may raise cv2.error on malformed headers: the caller gets what is wrong with the frame instead.
    if not body:
        raise ValueError(
            "the request body is empty (0 bytes): the frame is an empty object, not a decodable image; "
            "re-upload it or remove it from the frames"
        )
    try:
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise ValueError(
            f"the request body ({len(body)} bytes, starting {bytes(body[:8])!r}) is not a decodable image "
            f"({content_type}): re-upload the frame or remove it from the frames"
        )
    return image


def predict_fn(image: np.ndarray, model: dict) -> dict:
    settings = model["settings"]
    stride, padding = int(settings["win_stride"]), int(settings["padding"])
    rects, weights = model["hog"].detectMultiScale(
        image, winStride=(stride, stride), padding=(padding, padding), scale=float(settings["scale"])
    )
    detections = []
    for (x, y, w, h), margin in zip(
        np.asarray(rects).reshape(-1, 4), np.asarray(weights).ravel(), strict=True
    ):
        detections.append(
            {
                "label": settings["label"],
                "box": [int(x), int(y), int(w), int(h)],  # left, top, width, height in pixels
                # The SVM gives a margin, not a probability: squash it to (0, 1) so one threshold fits all models.
                "score": round(1.0 / (1.0 + math.exp(-float(margin))), 4),
            }
        )
    height, width = image.shape[:2]
    return {
        "model": os.environ.get("MODEL_NAME", MODEL_NAME),
        "image_size": {
            "width": width,
            "height": height,
            "depth": int(image.shape[2]) if image.ndim == 3 else 1,
        },
        "detections": detections,
    }


def output_fn(prediction: dict, accept: str) -> str:
    if "json" not in accept and accept not in ("*/*", ""):
        raise ValueError(f"unsupported accept {accept!r}: this model answers application/json")
    return json.dumps(prediction)
