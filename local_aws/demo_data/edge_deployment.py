"""edge_deployment's demo data: a small ONNX image classifier and the frames its devices' cameras see.

The model is generated and trained (numpy + ONNX Runtime, a second or so) by
include/edge_compiler/demo_model.py in the compiler's own environment: nothing is downloaded, and
neither onnx nor onnxruntime enters the sandbox's or Airflow's environment.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from local_aws import dockerfiles

INCLUDE = Path(__file__).resolve().parents[2] / "include"
PREFIX = "edge_deployment/demo"
DEVICES = ("edge-demo-camera-1", "edge-demo-camera-2")


def compiler_python() -> Path:
    """The Python of the orchard/edge-compiler image (its Dockerfile's environment, shared with the jobs)."""
    built = dockerfiles.build(INCLUDE / "edge_compiler", "edge-compiler", log=lambda line: None)
    return built.bin_dir / "python"


def generate(out: Path, per_device: int = 150, calibration: int = 40, seed: int = 7) -> Path:
    folder = INCLUDE / "edge_compiler"
    python = compiler_python()
    subprocess.run(
        [
            str(python),
            "demo_model.py",
            "--out",
            str(out),
            "--per-device",
            str(per_device),
            "--calibration",
            str(calibration),
            "--devices",
            str(len(DEVICES)),
            "--seed",
            str(seed),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def prepare_and_compile(out: Path, quantization: str) -> Path:
    """What the pipeline's prepare and compile jobs do, here and now (tests, benchmarks): returns the folder
    holding Neo's compiled.so and compiled.meta, reference.json and prepare.json."""
    folder, python = INCLUDE / "edge_compiler", compiler_python()
    work = out / f"prepared-{quantization}"
    (work / "input" / "model").mkdir(parents=True, exist_ok=True)
    (work / "input" / "model" / "model.tar.gz").write_bytes((out / "model.tar.gz").read_bytes())
    (work / "input" / "calibration").symlink_to(
        (out / "images" / "calibration").resolve(), target_is_directory=True
    )
    shape = '{"data": [1, 3, 32, 32]}'
    subprocess.run(
        [
            str(python),
            "prepare.py",
            "--input-shape",
            shape,
            "--quantization",
            quantization,
            "--root",
            str(work),
            "--failure-file",
            str(work / "failure"),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    compiled = out / f"compiled-{quantization}"
    subprocess.run(
        [
            str(python),
            "compile.py",
            "--model",
            str(work / "output" / "model" / "model.tar.gz"),
            "--framework",
            "ONNX",
            "--data-input-config",
            shape,
            "--target",
            '{"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}',
            "--output-dir",
            str(compiled),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    for name in ("reference.json", "prepare.json"):
        (compiled / name).write_bytes((work / "output" / "reference" / name).read_bytes())
    return compiled


def upload(s3_client: Any, settings: Any, per_device: int = 150, calibration: int = 40) -> dict:
    """A few hundred frames: `per_device` per simulated camera, plus the calibration set."""
    bucket = settings.data_bucket
    with tempfile.TemporaryDirectory(prefix="edge-demo-") as tmp:
        out = generate(Path(tmp), per_device, calibration)
        s3_client.upload_file(str(out / "model.tar.gz"), bucket, f"{PREFIX}/model/model.tar.gz")
        for path in sorted((out / "images").rglob("*.npy")):
            s3_client.upload_file(
                str(path), bucket, f"{PREFIX}/images/{path.relative_to(out / 'images').as_posix()}"
            )
    return {
        "model_uri": f"s3://{bucket}/{PREFIX}/model/model.tar.gz",
        "framework": "ONNX",
        "input_shape": '{"data": [1, 3, 32, 32]}',
        "target_device": "linux_x86_64",
        "quantization": "int8",
        "model_name": "fruit-colour",
        "model_version": "1.0.0",
        "fleet_name": "edge-demo-fleet",
        "device_names": list(DEVICES),
        "calibration_uri": f"s3://{bucket}/{PREFIX}/images/calibration/",
        "simulated_devices": True,
        "camera_images_uri": f"s3://{bucket}/{PREFIX}/images/",
        "delete_fleet": True,  # the demo deletes its fleet (an explicit action; by default the fleet stays)
        "poll_seconds": 2,  # the sandbox's jobs end in seconds: poll them at that pace
        "require_approval": False,  # the demo runs unattended (its simulated devices never wait anyway)
    }
