"""Fixtures of the Spark job tests: the ONNX model (exported by the export job's code, in its env) and photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_aws.demo_data.fruit_features import generate


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory, run_job_python) -> Path:
    folder = tmp_path_factory.mktemp("model")
    result = run_job_python(
        "fruit_features_export",
        "export.py",
        "--model",
        "efficientnet_lite0",
        "--output",
        str(folder),
        "--check-images",
        "2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "model.onnx"


def write_photos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """`count` readable photos + the generator's corrupt files under `folder`; returns the corrupt paths."""
    files, corrupt = generate(count, seed=seed, size=128)
    for key, body in files.items():
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return corrupt
