"""What edge_deployment's plugin tests share: the DAG file, a run id, a signing key ARN, a validation conf."""

from __future__ import annotations

from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "edge_deployment.py"
RUN = "manual__2026-11-21T10:00:00+00:00"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/k"


def demo_params(**overrides) -> dict:
    from local_aws.demo_data.edge_deployment import DEVICES

    params = {
        "model_uri": "s3://orchard-data/m/model.tar.gz",
        "framework": "ONNX",
        "input_shape": '{"data": [1, 3, 32, 32]}',
        "quantization": "none",
        "calibration_uri": "s3://orchard-data/m/calibration/",
        "simulated_devices": False,
        "camera_images_uri": "",
        "device_names": list(DEVICES),
        "capture_batch_size": 10,
        "capture_buffer_size": 30,
        "model_name": "m",
        "model_version": "1.0.0",
        "force_repackage": False,
    }
    return {**params, **overrides}
