"""dlc_train.py in its own environment on the tiny project: import from S3, train, evaluate, export."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest

from local_aws import client_env
from local_aws.demo_data import pose_training as tiny

BUCKET = "lab-uploads"
KEY = "pose-training/projects/tiny.zip"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def job_env(aws, **extra: str) -> dict[str, str]:
    return {
        **client_env(aws.url),
        "PATH": "/usr/bin:/bin",
        "TGT_S3_BUCKET": BUCKET,
        "DLC_PROJECT_PATH": KEY,
        "OUTPUT_PATH": "models/run-1",
        "DLC_EPOCHS": "2",
        "DLC_BATCH_SIZE": "4",
        "DLC_BACKBONE_WEIGHTS": "none",  # offline: from scratch
        "DLC_TRAIN_CROP": "96x80",
        **extra,
    }


def test_trains_the_tiny_project_and_exports_model_metrics_and_manifest(aws, s3, run_job_python):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=tiny.project_zip())

    done = run_job_python("pose_training", "dlc_train.py", env=job_env(aws))

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Epoch 2/2" in done.stdout + done.stderr
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key="models/run-1/manifest.json")["Body"].read())
    assert manifest["epochs"] == 2 and manifest["backbone_weights"] == "none"
    assert manifest["project"] == f"s3://{BUCKET}/{KEY}"
    assert manifest["metrics"]["test rmse"] > 0 and manifest["metrics"]["Training epochs"] == 2
    assert [row["step"] for row in manifest["learning_curve"]] == [1, 2]
    stored = {
        o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="models/run-1/")["Contents"]
    }
    for entry in manifest["files"]:
        assert stored[entry["key"]] == entry["bytes"]
    assert any(k.startswith("models/run-1/model/") and k.endswith(".pt") for k in stored)
    assert any(k.endswith("CombinedEvaluation-results.csv") for k in stored)
    # plotting=True: one plot per labeled image, 6 train and 2 test (TrainingFraction 0.75 of 8 frames)
    plots = manifest["evaluation_plots"]
    assert (len(plots["train"]), len(plots["test"])) == (6, 2), plots
    assert all("/LabeledImages_" in k and k in stored for k in plots["train"] + plots["test"])
    first = s3.get_object(Bucket=BUCKET, Key=plots["test"][0])["Body"].read()
    assert first.startswith(b"\x89PNG")


def test_a_zip_slip_project_exits_65_with_the_reason_and_writes_nothing(aws, s3, run_job_python):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../outside.txt", "escape")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=buffer.getvalue())

    done = run_job_python("pose_training", "dlc_train.py", env=job_env(aws))

    assert done.returncode == 65  # orchard.errors.INPUT_ERROR_EXIT_CODE: Batch and Airflow do not retry
    assert "unsafe path '../../outside.txt'" in done.stderr and "Traceback" in done.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="models/")


def test_missing_variables_and_unreadable_project_have_their_own_exit_codes(aws, s3, run_job_python):
    missing = run_job_python("pose_training", "dlc_train.py", env={**job_env(aws), "DLC_PROJECT_PATH": ""})
    assert missing.returncode == 65 and "missing environment variable(s) DLC_PROJECT_PATH" in missing.stderr

    absent = run_job_python("pose_training", "dlc_train.py", env=job_env(aws))  # nothing uploaded
    assert absent.returncode == 65 and f"s3://{BUCKET}/{KEY} does not exist" in absent.stderr
