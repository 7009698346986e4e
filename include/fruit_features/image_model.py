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


# --- what an image file is: ONE rule for the Spark job and the DAG's input check -------------------------
# The DAG's check (plugins/orchard/fruit_features/plan.py) cannot import job code (include/ is not deployed
# with Airflow): it holds a copy of `is_image_file`, kept identical by tests/plugins/fruit_features/test_plan.py
# (same answers on a table of names, same source text), and the Spark test checks that the job reads exactly
# the files this rule accepts.


def hidden_by_spark(part: str) -> bool:
    """Spark's file listing skips these names at every level (InMemoryFileIndex.shouldFilterOutPathName)."""
    return (part.startswith("_") and "=" not in part) or part.startswith(".") or part.endswith("._COPYING_")


def is_image_file(relative: str) -> bool:
    """Whether a key (relative to the images prefix) is an image the job reads: an image extension in any
    case (`.jpg`, `.JPG`, `.Jpeg`), in no folder Spark hides (`_x/`, `.x/`), not a hidden file or a folder."""
    parts = relative.split("/")
    if not parts[-1] or any(hidden_by_spark(part) for part in parts):
        return False
    stem, dot, extension = parts[-1].rpartition(".")
    return bool(dot and stem) and extension.lower() in IMAGE_EXTENSIONS


def spark_glob() -> str:
    """`pathGlobFilter` for binaryFile matching every IMAGE_EXTENSIONS in any case: `*.{[jJ][pP][gG],...}`."""
    either_case = ("".join(f"[{c.lower()}{c.upper()}]" for c in ext) for ext in IMAGE_EXTENSIONS)
    return "*.{" + ",".join(either_case) + "}"


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
