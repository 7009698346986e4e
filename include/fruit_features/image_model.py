"""Image bytes to CNN features with an ONNX model: decode, resize, run. No Spark here.

The Spark job ships this module to its Python workers (`--py-files`); the throughput benchmark runs the
very same functions in one plain Python process, so the two measure the same work.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

# What binaryFile reads (matched case-insensitively): the formats Pillow decodes that fruit photos come in.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp")


def decode(content: bytes, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3). Raises (OSError, ValueError, ...) on bytes that are not a readable image."""
    with Image.open(io.BytesIO(content)) as image:
        image.draft("RGB", (size, size))  # JPEG: let libjpeg decode at a reduced scale when it can (faster)
        return np.asarray(
            image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8
        )


def describe(error: Exception) -> str:
    """The decoder's error, without the in-memory buffer's address Pillow puts in some messages."""
    message = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(error))
    return f"{type(error).__name__}: {message}"[:300]


def decode_batch(contents: Sequence[bytes], size: int) -> tuple[np.ndarray, list[str | None]]:
    """Decoded images (zeros where unreadable) and, per image, None or why it could not be read."""
    pixels = np.zeros((len(contents), size, size, 3), dtype=np.uint8)
    errors: list[str | None] = [None] * len(contents)
    for index, content in enumerate(contents):
        try:
            pixels[index] = decode(content, size)
        except Exception as error:  # any decoder failure means "corrupt image": recorded, never fatal
            errors[index] = describe(error)
    return pixels, errors


def open_session(model_path: str, intra_op_threads: int = 1):
    """An ONNX Runtime CPU session. One intra-op thread each: Spark runs one Python worker per core."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


def model_info(session) -> dict[str, str | int]:
    """The export job's metadata (model, weights, input_size, feature_dim), sizes as ints."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    for key in ("input_size", "feature_dim"):
        if key not in meta:
            raise ValueError(
                f"the ONNX model has no {key!r} metadata: export it with fruit_features_export/export.py"
            )
        meta[key] = int(meta[key])
    return meta


def make_features_fn(session) -> Callable[[Sequence[bytes]], dict[str, np.ndarray]]:
    """bytes per image -> {"features": (N, dim) float32, "error": (N,) object}; unreadable rows get NaNs."""
    info = model_info(session)
    size, dim = info["input_size"], info["feature_dim"]

    def features(contents: Sequence[bytes]) -> dict[str, np.ndarray]:
        pixels, errors = decode_batch(contents, size)
        ok = np.array([error is None for error in errors])
        out = np.full((len(contents), dim), np.nan, dtype=np.float32)
        if ok.any():
            out[ok] = session.run(["features"], {"images": pixels[ok]})[0]
        return {"features": out, "error": np.array(errors, dtype=object)}

    return features
