"""The sandbox's SageMaker Neo: compile a model for a target device with Apache TVM.

Neo is built on TVM; this job does what a Neo compilation job does, with the TVM release on PyPI:
read the model archive (InputConfig.S3Uri, already downloaded), import it for the declared input shape,
compile it for the target's CPU (OutputConfig.TargetDevice or TargetPlatform) and write the artifact
layout Neo writes for a DLR target, as far as TVM's current release can: `compiled.so` (the library) and
`compiled.meta` (Neo's metadata: Requirements, Model inputs and outputs). Real Neo also writes
`compiled_model.json` + `compiled.params` (TVM's graph-executor graph and weights) for DLR to load; TVM's
current release has no graph executor (Relay was removed: the library is a Relax VM executable with the
weights inside), so those two files are not written and `compiled.meta` says which runtime loads this
library (`Runtime`: "tvm-relax-vm"; see docs/sandbox.md, "Neo and IoT"). Any error ends the job with a
FailureReason (written to --failure-file, then exit 1). A quantized (QDQ) ONNX model compiles the same way.

    python compile.py --model model.tar.gz --framework ONNX --data-input-config '{"data":[1,3,32,32]}'
                      --target '{"TargetDevice": "ml_c5"}' --output-dir out/ [--failure-file f]
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

COMPILED_NAME = "compiled.so"  # Neo's names for a DLR target's library and its metadata
META_NAME = "compiled.meta"
SANDBOX_RUNTIME = "tvm-relax-vm"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        compile_job(
            Path(args.model),
            args.framework,
            json.loads(args.data_input_config),
            json.loads(args.target),
            Path(args.output_dir),
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
    parser.add_argument("--failure-file", default="")
    return parser.parse_args(argv)


def compile_job(archive: Path, framework: str, shapes: dict, target_spec: dict, output_dir: Path) -> dict:
    started = time.perf_counter()
    target = targets.resolve(target_spec)
    workdir = Path(tempfile.mkdtemp(prefix="neo-"))
    model_path = _unpack_model(archive, framework, workdir)
    model = _load_onnx(model_path, shapes)
    output_dir.mkdir(parents=True, exist_ok=True)
    print(f"compiling {model_path.name} for {target.name} ({target.tvm_target}) with Apache TVM", flush=True)
    _compile(model, shapes, target, output_dir / COMPILED_NAME)
    quantized = _is_quantized(model)
    output_shape = None
    if target.native:  # prove the library loads and runs before it is shipped
        [shape] = shapes.values()
        scores = _run_compiled(output_dir / COMPILED_NAME, np.zeros([1, *shape[1:]], np.float32))
        output_shape = list(scores.shape)
    metadata = {
        # Neo's compiled.meta keys (Requirements, Model.Inputs/Outputs), then what this compiler adds.
        "Requirements": {"TargetDevice": target.name, "TargetDeviceType": "cpu"},
        "Model": {
            "Inputs": [
                {"name": name, "shape": list(shape), "dtype": "float32"} for name, shape in shapes.items()
            ],
            "Outputs": [
                {"name": o.name, "shape": output_shape, "dtype": "float32"} for o in model.graph.output
            ],
        },
        "Runtime": SANDBOX_RUNTIME,
        "Compiler": {
            "name": "apache-tvm",
            "version": _tvm_version(),
            "target": target.tvm_target,
            "framework": framework.upper(),
        },
        "Quantized": quantized,
    }
    metadata["CompileSeconds"] = round(time.perf_counter() - started, 2)
    (output_dir / META_NAME).write_text(json.dumps(metadata, indent=2))
    sizes = {"onnx": model_path.stat().st_size, "compiled": (output_dir / COMPILED_NAME).stat().st_size}
    print(f"compiled in {metadata['CompileSeconds']} s: {json.dumps(sizes)}", flush=True)
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
        raise CompilationError(
            f"InputConfig.S3Uri is not a readable .tar.gz model archive ({error})"
        ) from error
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
        raise CompilationError(
            f"{path.name} is not a valid ONNX model: {str(error).splitlines()[0][:300]}"
        ) from error
    initializers = {i.name for i in model.graph.initializer}
    inputs = {
        i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
        if i.name not in initializers
    }
    if set(shapes) != set(inputs):
        raise CompilationError(
            f"DataInputConfig names {sorted(shapes)}, the model's inputs are {sorted(inputs)}"
        )
    for name, shape in shapes.items():
        declared = inputs[name]
        if len(declared) != len(shape) or any(
            isinstance(d, int) and d != s for d, s in zip(declared, shape, strict=True)
        ):
            raise CompilationError(
                f"input {name!r}: DataInputConfig shape {shape} does not fit the model's {declared}"
            )
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
        raise CompilationError(
            f"TVM could not compile the model: {str(error).splitlines()[-1][:300]}"
        ) from error
    try:
        executable.export_library(str(out), cc=target.cc)
    except Exception as error:
        raise CompilationError(
            f"linking for {target.name} failed ({target.cc}): {str(error).splitlines()[-1][:200]}"
        ) from error


def _tvm_version() -> str:
    import tvm

    return tvm.__version__


def _is_quantized(model) -> bool:
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def _run_compiled(library: Path, images: np.ndarray) -> np.ndarray:
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    return np.concatenate([vm["main"](tvm.runtime.tensor(image[None])).numpy() for image in images])


if __name__ == "__main__":
    sys.exit(main())
