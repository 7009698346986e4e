"""validate_model: bad input refused before any job, and what the jobs would refuse refused first."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.plugins.edge_deployment.samples import RUN, demo_params


def test_validate_model_refuses_bad_input_before_any_compilation(s3, tmp_path):
    from local_aws.demo_data import edge_deployment as demo
    from orchard.edge_deployment.validation import validate
    from orchard.errors import InputError

    model = demo.generate(tmp_path, per_device=1, calibration=1) / "model.tar.gz"
    s3.upload_file(str(model), "orchard-data", "m/model.tar.gz")
    s3.put_object(Bucket="orchard-data", Key="m/calibration/0.npy", Body=b"\x93NUMPY")
    checked = validate(demo_params(), RUN)
    assert checked["model_files"] == ["model.onnx"]
    processing = checked["processing_config"]
    assert processing["ProcessingJobName"].startswith("edge-deployment-manual-20261121t100000")
    assert processing["AppSpecification"]["ContainerArguments"][3:6] == ["none", "--framework", "ONNX"]

    refusals = {
        "does not fit the model's [1, 3, 32, 32]": demo_params(input_shape='{"data": [1, 3, 64, 64]}'),
        "takes ['data']": demo_params(input_shape='{"images": [1, 3, 32, 32]}'),
        "does not exist": demo_params(model_uri="s3://orchard-data/m/missing.tar.gz"),
        "one .pt/.pth file": demo_params(framework="PYTORCH"),
        "calibration_uri is needed": demo_params(calibration_uri=""),
        "quantizes ONNX models": demo_params(framework="PYTORCH", quantization="int8"),
        "needs camera_images_uri": demo_params(simulated_devices=True),
        "repeats a name": demo_params(device_names=["a", "a"]),
        "exceeds capture_buffer_size": demo_params(capture_batch_size=50),
    }
    for message, params in refusals.items():
        with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
            validate(params, RUN)
    assert boto3.client("sagemaker").list_compilation_jobs()["CompilationJobSummaries"] == []


def test_validation_refuses_what_the_jobs_would_refuse_before_any_job_starts(s3, tmp_path):
    """13.3: an existing package version and an empty calibration folder were refused only after the
    prepare job and Neo ran (a billed job per try); 13.7: `calibration` never reads `calibration-old/`."""
    from local_aws.demo_data import edge_deployment as demo
    from orchard.edge_deployment.validation import validate
    from orchard.errors import InputError

    model = demo.generate(tmp_path, per_device=1, calibration=1) / "model.tar.gz"
    s3.upload_file(str(model), "orchard-data", "m/model.tar.gz")
    s3.put_object(Bucket="orchard-data", Key="m/calibration-old/0.npy", Body=b"\x93NUMPY")
    refused = "calibration_uri s3://orchard-data/m/calibration/ holds no .npy frames"
    with pytest.raises(InputError, match=refused):
        validate(demo_params(calibration_uri="s3://orchard-data/m/calibration"), RUN)
    s3.put_object(Bucket="orchard-data", Key="m/calibration/0.npy", Body=b"\x93NUMPY")
    checked = validate(demo_params(calibration_uri="s3://orchard-data/m/calibration"), RUN)
    inputs = checked["processing_config"]["ProcessingInputs"]
    [calibration] = [i for i in inputs if i["InputName"] == "calibration"]
    assert calibration["S3Input"]["S3Uri"] == "s3://orchard-data/m/calibration/"

    package = "edge_deployment/packages/m/1.0.0/"
    s3.put_object(Bucket="orchard-artifacts", Key=package + "package.tar.gz", Body=b"x")
    s3.put_object(
        Bucket="orchard-artifacts",
        Key=package + "manifest.json",
        Body=json.dumps({"source": {"compilation_job": "another-run"}}).encode(),
    )
    exists = f"s3://orchard-artifacts/{package}package.tar.gz exists: .* Bump model_version"
    with pytest.raises(InputError, match=exists):
        validate(demo_params(), RUN)
    assert validate(demo_params(force_repackage=True), RUN)["model_files"] == ["model.onnx"]
    from orchard import naming

    own = naming.resource_name("sagemaker_compilation_job", "edge_deployment", RUN)
    s3.put_object(
        Bucket="orchard-artifacts",
        Key=package + "manifest.json",
        Body=json.dumps({"source": {"compilation_job": own}}).encode(),
    )
    assert validate(demo_params(), RUN)["model_files"] == ["model.onnx"]  # this run, cleared after packaging
    assert boto3.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"] == []


def test_validation_reads_the_model_calibration_and_package_at_once_each_once(s3, tmp_path, api_calls):
    """The model, the calibration folder and a published package of this version are independent reads:
    their first requests wait here for each other, which one after the other never happens. The model is
    looked up once (one HEAD, one GET) on one client: no boto3 resource, no second HEAD."""
    from local_aws.demo_data import edge_deployment as demo
    from orchard.edge_deployment.validation import validate

    model = demo.generate(tmp_path, per_device=1, calibration=1) / "model.tar.gz"
    s3.upload_file(str(model), "orchard-data", "m/model.tar.gz")
    s3.put_object(Bucket="orchard-data", Key="m/calibration/0.npy", Body=b"\x93NUMPY")
    api_calls.clear()
    api_calls.meet({"HeadObject", "ListObjectsV2"}, 3)

    assert validate(demo_params(), RUN)["model_files"] == ["model.onnx"]

    calls = [(name, p.get("Key")) for name, p in api_calls]
    assert sorted(calls) == [
        ("GetObject", "m/model.tar.gz"),
        ("HeadObject", "edge_deployment/packages/m/1.0.0/package.tar.gz"),
        ("HeadObject", "m/model.tar.gz"),
        ("ListObjectsV2", None),
    ]
