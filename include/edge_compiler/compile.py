"""The sandbox's SageMaker Neo: compile a model for a target device with Apache TVM.

Neo is built on TVM; this job does what a Neo compilation job does, with the TVM release on PyPI:
read the model archive (InputConfig.S3Uri, already downloaded), import it for the declared input shape,
compile it for the target's CPU (OutputConfig.TargetDevice or TargetPlatform) and write a tarball of
the compiled library and its metadata. Any error ends the job with a FailureReason (written to
/opt/ml/output/failure, SageMaker's convention, then exit 1).

orchard extension, in OutputConfig.CompilerOptions (JSON):
  {"orchard_quantization": "int8", "orchard_calibration_uri": "s3://.../images/"}
adds an int8 model (ONNX Runtime static quantization, QDQ, calibrated on those images) compiled the same
way, its top-1 agreement with the float model, and the reference input/prediction distribution that the
fleet's monitor compares captured data with.

    python compile.py --model model.tar.gz --framework ONNX --data-input-config '{"data":[1,3,32,32]}'
                      --target '{"TargetDevice": "ml_c5"}' --output-dir out/ [--compiler-options '{...}']
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import targets
from errors import CompilationError
from reference import input_summary, prediction_summary

COMPILED_NAME = "model.so"
INT8_COMPILED_NAME = "model-int8.so"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        compile_job(
            Path(args.model), args.framework, json.loads(args.data_input_config), json.loads(args.target),
            Path(args.output_dir), json.loads(args.compiler_options or "{}") if args.compiler_options else {},
            Path(args.failure_file) if args.failure_file else None,
        )
    except CompilationError as error:
        print(f"compilation failed: {error}", flush=True)
        if args.failure_file:
            Path(args.failure_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.failure_file).write_text(f"ClientError: {error}")
        return 1
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the model archive (model.tar.gz)")
    parser.add_argument("--framework", required=True)
    parser.add_argument("--data-input-config", required=True, help='{"input name": [shape]}')
    parser.add_argument("--target", required=True, help='{"TargetDevice": ...} or {"TargetPlatform": {...}}')
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--compiler-options", default="")
    parser.add_argument("--failure-file", default="")
    return parser.parse_args(argv)


def compile_job(
    archive: Path, framework: str, shapes: dict, target_spec: dict, output_dir: Path,
    options: dict, failure_file: Path | None = None,
) -> dict:
    started = time.perf_counter()
    target = targets.resolve(target_spec)
    workdir = Path(tempfile.mkdtemp(prefix="neo-"))
    model_path = _unpack_model(archive, framework, workdir)
    model = _load_onnx(model_path, shapes)
    output_dir.mkdir(parents=True, exist_ok=True)
    print(f"compiling {model_path.name} for {target.name} ({target.tvm_target}) with Apache TVM", flush=True)
    _compile(model, shapes, target, output_dir / COMPILED_NAME)
    metadata = {
        "framework": framework.upper(),
        "data_input_config": shapes,
        "target": target.name,
        "tvm_target": target.tvm_target,
        "compiler": f"apache-tvm {_tvm_version()}",
        "files": {"float32": COMPILED_NAME},
        "sizes_bytes": {"onnx_float32": model_path.stat().st_size, "compiled_float32": (output_dir / COMPILED_NAME).stat().st_size},
        "outputs": [o.name for o in model.graph.output],
    }
    calibration_uri = options.get("orchard_calibration_uri")
    if calibration_uri:
        images = _load_images(calibration_uri, workdir / "calibration", shapes)
        reference, float_top1 = _reference(model_path, shapes, images)
        (output_dir / "reference.json").write_text(json.dumps(reference))
        metadata["reference_images"] = len(images)
        if options.get("orchard_quantization") == "int8":
            metadata.update(_int8(model_path, shapes, images, float_top1, target, output_dir, workdir))
    elif options.get("orchard_quantization") == "int8":
        raise CompilationError("int8 quantization needs calibration data: set orchard_calibration_uri in CompilerOptions")
    metadata["compile_seconds"] = round(time.perf_counter() - started, 2)
    (output_dir / "compiled.json").write_text(json.dumps(metadata, indent=2))
    print(f"compiled in {metadata['compile_seconds']} s: {json.dumps(metadata['sizes_bytes'])}", flush=True)
    return metadata


def _unpack_model(archive: Path, framework: str, workdir: Path) -> Path:
    if framework.upper() != "ONNX":
        raise CompilationError(
            f"Framework {framework.upper()}: the sandbox compiler (Apache TVM relax) imports ONNX models only; "
            "export the model to ONNX (e.g. torch.onnx.export) and compile it with Framework=ONNX"
        )
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(workdir / "model", filter="data")
    except (tarfile.TarError, OSError) as error:
        raise CompilationError(f"InputConfig.S3Uri is not a readable .tar.gz model archive ({error})") from error
    found = sorted((workdir / "model").rglob("*.onnx"))
    if len(found) != 1:
        raise CompilationError(f"the model archive must hold exactly one .onnx file, found {len(found)}")
    return found[0]


def _load_onnx(path: Path, shapes: dict):
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:
        raise CompilationError(f"{path.name} is not a valid ONNX model: {str(error).splitlines()[0][:300]}") from error
    initializers = {i.name for i in model.graph.initializer}
    inputs = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input if i.name not in initializers}
    if set(shapes) != set(inputs):
        raise CompilationError(f"DataInputConfig names {sorted(shapes)}, the model's inputs are {sorted(inputs)}")
    for name, shape in shapes.items():
        declared = inputs[name]
        if len(declared) != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(declared, shape)):
            raise CompilationError(f"input {name!r}: DataInputConfig shape {shape} does not fit the model's {declared}")
    return model


def _compile(model, shapes: dict, target: targets.Target, out: Path) -> None:
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    try:
        module = from_onnx(model, shape_dict=shapes)
        module = relax.transform.DecomposeOpsForInference()(module)
        module = relax.transform.LegalizeOps()(module)
        executable = tvm.compile(module, target=tvm.target.Target(target.tvm_target))
    except Exception as error:
        raise CompilationError(f"TVM could not compile the model: {str(error).splitlines()[-1][:300]}") from error
    try:
        executable.export_library(str(out), cc=target.cc)
    except Exception as error:
        raise CompilationError(f"linking for {target.name} failed ({target.cc}): {str(error).splitlines()[-1][:200]}") from error


def _tvm_version() -> str:
    import tvm

    return tvm.__version__


def _load_images(uri: str, dest: Path, shapes: dict) -> np.ndarray:
    """Calibration images (.npy, uint8 HxWxC or CxHxW) from S3 (or a local folder), as a float batch in [0, 1]."""
    if uri.startswith("s3://"):
        _download(uri, dest)
    else:
        dest = Path(uri)
    arrays = [np.load(path) for path in sorted(dest.glob("*.npy"))]
    if not arrays:
        raise CompilationError(f"no .npy images under orchard_calibration_uri {uri}")
    [shape] = shapes.values()
    return np.stack([to_input(a, shape) for a in arrays])


def _download(uri: str, dest: Path) -> None:
    import boto3

    bucket, _, prefix = uri[5:].partition("/")
    s3 = boto3.client("s3")
    dest.mkdir(parents=True, exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".npy"):
                s3.download_file(bucket, item["Key"], str(dest / Path(item["Key"]).name))


def to_input(image: np.ndarray, shape: list[int]) -> np.ndarray:
    """uint8 HxWxC (or CxHxW) image -> float32 CxHxW in [0, 1], the layout of the model's input."""
    array = image.astype(np.float32) / 255.0
    if array.shape[-1] == shape[1] and array.shape[0] != shape[1]:
        array = array.transpose(2, 0, 1)
    if list(array.shape) != list(shape[1:]):
        raise CompilationError(f"calibration image shape {image.shape} does not fit the input shape {shape}")
    return array


def _run_onnx(path: Path, name: str, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {name: image[None]})[0] for image in images])


def _run_compiled(library: Path, images: np.ndarray) -> np.ndarray:
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    return np.concatenate([vm["main"](tvm.runtime.tensor(image[None])).numpy() for image in images])


def _reference(model_path: Path, shapes: dict, images: np.ndarray) -> tuple[dict, np.ndarray]:
    [name] = shapes
    scores = _run_onnx(model_path, name, images)
    top1 = scores.argmax(axis=1)
    return {"inputs": input_summary(images), "predictions": prediction_summary(top1, scores.shape[1])}, top1


def _int8(model_path: Path, shapes: dict, images: np.ndarray, float_top1: np.ndarray,
          target: targets.Target, output_dir: Path, workdir: Path) -> dict:
    """ONNX Runtime static quantization (QDQ, calibrated on half the images), compiled like the float model."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    [name] = shapes
    calibration, held_out = images[: max(1, len(images) // 2)], images[max(1, len(images) // 2):] if len(images) > 1 else images

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{name: image[None]} for image in calibration])

        def get_next(self):
            return next(self._batches, None)

    quantized = workdir / "model-int8.onnx"
    quantize_static(str(model_path), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    _compile(onnx.load(str(quantized)), shapes, target, output_dir / INT8_COMPILED_NAME)
    if target.native:  # compare what ships: both compiled libraries, run by the TVM runtime
        measured_on = "TVM-compiled float32 vs int8 libraries"
        reference_top1 = _run_compiled(output_dir / COMPILED_NAME, held_out).argmax(axis=1)
        int8_top1 = _run_compiled(output_dir / INT8_COMPILED_NAME, held_out).argmax(axis=1)
    else:  # a cross-compiled library cannot run here: compare the ONNX models instead
        measured_on = "ONNX Runtime float32 vs QDQ int8 models (cross-compiled target)"
        reference_top1 = float_top1[len(float_top1) - len(held_out):]
        int8_top1 = _run_onnx(quantized, name, held_out).argmax(axis=1)
    agreement = float((int8_top1 == reference_top1).mean())
    print(f"int8: top-1 agreement with float32 {agreement:.3f} on {len(held_out)} held-out images ({measured_on})", flush=True)
    return {
        "files": {"float32": COMPILED_NAME, "int8": INT8_COMPILED_NAME},
        "sizes_bytes": {
            "onnx_float32": model_path.stat().st_size,
            "onnx_int8": quantized.stat().st_size,
            "compiled_float32": (output_dir / COMPILED_NAME).stat().st_size,
            "compiled_int8": (output_dir / INT8_COMPILED_NAME).stat().st_size,
        },
        "int8_top1_agreement": round(agreement, 4),
        "int8_agreement_images": len(held_out),
        "int8_agreement_measured_on": measured_on,
        "quantization": "onnxruntime static QDQ (activations uint8, weights int8 per channel)",
    }


if __name__ == "__main__":
    sys.exit(main())
