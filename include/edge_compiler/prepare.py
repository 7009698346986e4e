"""Prepare a model for Neo: the reference distribution for drift, and optionally its int8 version.

Runs as a SageMaker Processing job (image orchard/edge-compiler) before compilation, the same on AWS and
in the sandbox:

    python prepare.py --input-shape '{"data": [1, 3, 32, 32]}' [--quantization int8]
      inputs:  /opt/ml/processing/input/model/model.tar.gz (one .onnx), /opt/ml/processing/input/calibration/*.npy
      outputs: /opt/ml/processing/output/model/model.tar.gz   the model Neo compiles (int8 QDQ ONNX, or as given)
               /opt/ml/processing/output/reference/reference.json   input brightness + predicted classes
               /opt/ml/processing/output/reference/prepare.json     sizes, int8 top-1 agreement

int8 is ONNX Runtime static quantization (QDQ: uint8 activations, per-channel int8 weights) calibrated on
the first half of the images; its top-1 agreement with the float model is measured on the other half.
A problem with the input ends the job with `InputError: <message>` in /opt/ml/output/failure (SageMaker's
FailureReason: the orchard operator fails the task without retry, one billed job) and exit 65; the message
names the S3 URIs the inputs came from (`--model-uri`, `--calibration-uri`), not the container's folders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from errors import CompilationError
from reference import input_summary, prediction_summary

PROCESSING = Path("/opt/ml/processing")
FAILURE_FILE = Path("/opt/ml/output/failure")
# orchard.errors' convention (job code runs without Airflow and repeats the values).
INPUT_ERROR_EXIT_CODE = 65
INPUT_ERROR_PREFIX = "InputError: "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-shape", required=True)
    parser.add_argument("--quantization", choices=["none", "int8"], default="none")
    parser.add_argument("--framework", default="ONNX")
    parser.add_argument("--root", default=str(PROCESSING), help="the processing folder (tests)")
    parser.add_argument("--failure-file", default=str(FAILURE_FILE))
    parser.add_argument("--model-uri", default="", help="the S3 URI of the model input (for messages)")
    parser.add_argument(
        "--calibration-uri", default="", help="the S3 URI of the calibration input (for messages)"
    )
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        if args.framework.upper() == "ONNX":
            summary = prepare(
                root / "input" / "model",
                root / "input" / "calibration",
                json.loads(args.input_shape),
                args.quantization,
                root / "output",
            )
        else:
            summary = pass_through(
                root / "input" / "model", args.framework, args.quantization, root / "output"
            )
    except CompilationError as error:
        model_folder = args.model_uri.rsplit("/", 1)[0] + "/" if args.model_uri else ""
        message = to_s3(
            str(error),
            {
                str(root / "input" / "model"): model_folder,
                str(root / "input" / "calibration"): args.calibration_uri,
            },
        )
        print(f"preparation failed: {message}", flush=True)
        Path(args.failure_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.failure_file).write_text(f"{INPUT_ERROR_PREFIX}{message}"[:1024])
        return INPUT_ERROR_EXIT_CODE
    print(json.dumps(summary), flush=True)
    return 0


def to_s3(message: str, folders: dict[str, str]) -> str:
    """`message` with each local input folder replaced by the S3 URI it was downloaded from."""
    for local, uri in folders.items():
        if uri:
            message = message.replace(local.rstrip("/") + "/", uri.rstrip("/") + "/")
            message = message.replace(local, uri.rstrip("/") + "/")
    return message


def prepare(model_dir: Path, calibration_dir: Path, shapes: dict, quantization: str, out: Path) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="prepare-"))
    model_path = unpack_onnx(model_dir, workdir)
    [(name, shape)] = shapes.items()
    images = load_images(calibration_dir, shape)
    float_scores = run_onnx(model_path, name, images)
    reference = {
        "inputs": input_summary(images),
        "predictions": prediction_summary(float_scores.argmax(axis=1), float_scores.shape[1]),
    }
    (out / "reference").mkdir(parents=True, exist_ok=True)
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "reference" / "reference.json").write_text(json.dumps(reference))
    summary: dict = {
        "quantization": quantization,
        "reference_images": int(len(images)),
        "sizes_bytes": {"onnx_float32": model_path.stat().st_size},
    }
    to_compile = model_path
    if quantization == "int8":
        to_compile = workdir / "model-int8.onnx"
        summary.update(quantize(model_path, name, images, float_scores, to_compile))
    with tarfile.open(out / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(to_compile, arcname="model.onnx")
    (out / "reference" / "prepare.json").write_text(json.dumps(summary))
    return summary


def pass_through(model_dir: Path, framework: str, quantization: str, out: Path) -> dict:
    """A non-ONNX model goes to Neo as it is: no reference (drift is not monitored) and no quantization here."""
    if quantization != "none":
        raise CompilationError(
            f"int8 quantization here is for ONNX models; quantize the {framework} model before upload"
        )
    archives = sorted(model_dir.glob("*.tar.gz")) + sorted(model_dir.glob("*.tgz"))
    if len(archives) != 1:
        raise CompilationError(f"expected one model archive in the model input, found {len(archives)}")
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "reference").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archives[0], out / "model" / "model.tar.gz")
    summary = {
        "quantization": "none",
        "reference_images": 0,
        "note": f"{framework}: no reference distribution (computed for ONNX models only); drift is not monitored",
    }
    (out / "reference" / "prepare.json").write_text(json.dumps(summary))
    return summary


def unpack_onnx(model_dir: Path, workdir: Path) -> Path:
    archives = sorted(model_dir.glob("*.tar.gz")) + sorted(model_dir.glob("*.tgz"))
    if len(archives) != 1:
        raise CompilationError(f"expected one model archive in the model input, found {len(archives)}")
    try:
        with tarfile.open(archives[0]) as tar:
            tar.extractall(workdir / "model", filter="data")
    except (tarfile.TarError, OSError) as error:
        raise CompilationError(
            f"{model_dir / archives[0].name} is not a readable .tar.gz ({error})"
        ) from error
    found = sorted((workdir / "model").rglob("*.onnx"))
    if len(found) != 1:
        raise CompilationError(f"the model archive must hold exactly one .onnx file, found {len(found)}")
    return found[0]


def load_images(folder: Path, shape: list[int]) -> np.ndarray:
    arrays = [np.load(path) for path in sorted(folder.glob("*.npy"))]
    if not arrays:
        raise CompilationError(
            f"no .npy calibration images in {folder}: upload the frames (uint8 HxWxC or "
            "CxHxW arrays saved with numpy.save) there, or point calibration_uri at them"
        )
    return np.stack([to_input(array, shape) for array in arrays])


def to_input(image: np.ndarray, shape: list[int]) -> np.ndarray:
    """uint8 HxWxC (or CxHxW) image -> float32 CxHxW in [0, 1], the layout of the model's input."""
    array = image.astype(np.float32) / 255.0
    if array.shape[-1] == shape[1] and array.shape[0] != shape[1]:
        array = array.transpose(2, 0, 1)
    if list(array.shape) != list(shape[1:]):
        raise CompilationError(f"calibration image shape {image.shape} does not fit the input shape {shape}")
    return array


def run_onnx(path: Path, name: str, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {name: image[None]})[0] for image in images])
    except Exception as error:  # onnxruntime raises its own types for a bad model or input name
        raise CompilationError(
            f"ONNX Runtime could not run {path.name}: {str(error).splitlines()[0][:300]}"
        ) from error


def quantize(model_path: Path, name: str, images: np.ndarray, float_scores: np.ndarray, out: Path) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    half = max(1, len(images) // 2)
    calibration, held_out = images[:half], images[half:] if len(images) > 1 else images

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{name: image[None]} for image in calibration])

        def get_next(self):
            return next(self._batches, None)

    quantize_static(
        str(model_path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    float_top1 = float_scores[len(float_scores) - len(held_out) :].argmax(axis=1)
    int8_top1 = run_onnx(out, name, held_out).argmax(axis=1)
    agreement = float((int8_top1 == float_top1).mean())
    print(
        f"int8: top-1 agreement with float32 {agreement:.3f} on {len(held_out)} held-out images", flush=True
    )
    return {
        "sizes_bytes": {"onnx_float32": model_path.stat().st_size, "onnx_int8": out.stat().st_size},
        "int8_top1_agreement": round(agreement, 4),
        "int8_agreement_images": int(len(held_out)),
        "int8_method": "onnxruntime static QDQ (activations uint8, weights int8 per channel)",
    }


if __name__ == "__main__":
    sys.exit(main())
