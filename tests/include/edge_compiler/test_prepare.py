"""The prepare job (reference distribution, int8) in the compiler's own environment, on generated data."""

from __future__ import annotations

import json
import tarfile

from local_aws.demo_data import edge_deployment as demo


def test_prepare_writes_the_reference_and_an_int8_model_that_neo_compiles(tmp_path):
    out = demo.generate(tmp_path, per_device=1, calibration=16)
    compiled = demo.prepare_and_compile(out, "int8")

    prepared = json.loads((compiled / "prepare.json").read_text())
    assert prepared["sizes_bytes"]["onnx_int8"] < prepared["sizes_bytes"]["onnx_float32"]
    assert 0.0 <= prepared["int8_top1_agreement"] <= 1.0 and prepared["int8_agreement_images"] == 8
    reference = json.loads((compiled / "reference.json").read_text())
    assert sum(reference["inputs"]["counts"]) == 16 and sum(reference["predictions"]["counts"]) == 16
    assert json.loads((compiled / "compiled.meta").read_text())["Quantized"] is True
    with tarfile.open(out / "prepared-int8" / "output" / "model" / "model.tar.gz") as tar:
        assert tar.getnames() == ["model.onnx"]


def test_prepare_refuses_to_quantize_a_model_it_cannot_read(run_job_python, tmp_path):
    (tmp_path / "input" / "model").mkdir(parents=True)
    with tarfile.open(tmp_path / "input" / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(__file__, arcname="model.tflite")
    result = run_job_python(
        "edge_compiler",
        "prepare.py",
        "--input-shape",
        '{"data": [1, 3, 32, 32]}',
        "--quantization",
        "int8",
        "--framework",
        "TFLITE",
        "--root",
        str(tmp_path),
        "--failure-file",
        str(tmp_path / "failure"),
    )
    assert result.returncode == 65  # orchard.errors.INPUT_ERROR_EXIT_CODE: an input error, not retried
    reason = (tmp_path / "failure").read_text()
    assert reason.startswith("InputError: int8 quantization here is for ONNX models")


def test_an_input_error_is_final_and_names_the_s3_uri_not_the_container_folder(run_job_python, tmp_path):
    """13.3 / 13.9: `InputError: ` first in the failure file, exit 65, the user's S3 URI in the message."""
    out = demo.generate(tmp_path / "data", per_device=1, calibration=2)
    (tmp_path / "input" / "model").mkdir(parents=True)
    (tmp_path / "input" / "model" / "model.tar.gz").write_bytes((out / "model.tar.gz").read_bytes())
    (tmp_path / "input" / "calibration").mkdir()  # the frames were uploaded elsewhere: the folder is empty
    uri = "s3://orchard-data/edge_deployment/frames/"
    result = run_job_python(
        "edge_compiler",
        "prepare.py",
        "--input-shape",
        '{"data": [1, 3, 32, 32]}',
        "--root",
        str(tmp_path),
        "--failure-file",
        str(tmp_path / "failure"),
        "--model-uri",
        "s3://orchard-data/m/model.tar.gz",
        "--calibration-uri",
        uri,
    )
    assert result.returncode == 65, result.stdout + result.stderr
    reason = (tmp_path / "failure").read_text()
    assert reason.startswith(f"InputError: no .npy calibration images in {uri}")
    assert str(tmp_path) not in reason
