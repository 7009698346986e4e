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

from local_aws.environments import ensure_env

INCLUDE = Path(__file__).resolve().parents[2] / "include"
PREFIX = "edge_deployment/demo"
DEVICES = ("edge-demo-camera-1", "edge-demo-camera-2")


def generate(out: Path, per_device: int = 150, calibration: int = 40) -> Path:
    folder = INCLUDE / "edge_compiler"
    python = ensure_env((folder / "requirements.txt").read_text(), label="edge-compiler", log=lambda line: None) / "python"
    subprocess.run(
        [str(python), "demo_model.py", "--out", str(out), "--per-device", str(per_device),
         "--calibration", str(calibration), "--devices", str(len(DEVICES))],
        cwd=folder, check=True, capture_output=True, text=True,
    )
    return out


def upload(s3_client: Any, settings: Any, per_device: int = 150, calibration: int = 40) -> dict:
    """A few hundred frames: `per_device` per simulated camera, plus the calibration set."""
    bucket = settings.data_bucket
    with tempfile.TemporaryDirectory(prefix="edge-demo-") as tmp:
        out = generate(Path(tmp), per_device, calibration)
        s3_client.upload_file(str(out / "model.tar.gz"), bucket, f"{PREFIX}/model/model.tar.gz")
        for path in sorted((out / "images").rglob("*.npy")):
            s3_client.upload_file(str(path), bucket, f"{PREFIX}/images/{path.relative_to(out / 'images').as_posix()}")
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
        "cleanup": True,
        "poll_seconds": 2,  # the sandbox's jobs end in seconds: poll them at that pace
    }
