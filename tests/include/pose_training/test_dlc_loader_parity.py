"""DeepLabCut's own loaders agree with the validation (issue 13.3): in the job's environment, on the same
zips as tests/plugins/pose_training/test_project.py, the job's import step (the same normalisation) makes
Windows and macOS projects into ones DeepLabCut 3.0.2 builds a training set from; and a project validation
refuses (labels of another scorer) really gives DeepLabCut nothing to train on when the check is bypassed.

Runs `deeplabcut.create_training_dataset` only (CPU, no training): the step that read the labels.
"""

from __future__ import annotations

import json

import boto3
import pytest

from local_aws import client_env
from local_aws.demo_data import pose_training as tiny
from tests.plugins.pose_training.test_project import build_zip, renamed, windows_config

BUCKET = "lab-uploads"

DRIVER = r"""
import json, os, sys
from pathlib import Path
import boto3
import dlc_train

result = {}
job = dlc_train.JobConfig.from_env(dict(os.environ))
s3 = boto3.client("s3")
if os.environ.get("BYPASS_CHECK"):
    dlc_train.check_project = lambda config: None  # what DeepLabCut alone would do with the project
try:
    config = dlc_train.import_dlc_zip_project(s3, job)
except dlc_train.JobError as error:
    print(json.dumps({"refused": str(error), "exit_code": error.exit_code}))
    sys.exit(0)
import deeplabcut
dlc_train._labels_to_h5(config)
deeplabcut.create_training_dataset(str(config), num_shuffles=1, net_type="resnet_50", userfeedback=False)
made = sorted(p.name for p in (config.parent / "training-datasets").rglob("*") if p.is_file())
print(json.dumps({"training_files": made}))
"""


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def run_driver(aws, s3, run_job_python, tmp_path, body: bytes, **extra: str) -> dict:
    s3.put_object(Bucket=BUCKET, Key="projects/p.zip", Body=body)
    env = {
        **client_env(aws.url),
        "PATH": "/usr/bin:/bin",
        "TGT_S3_BUCKET": BUCKET,
        "DLC_PROJECT_PATH": "projects/p.zip",
        "OUTPUT_PATH": "models/x",
        "LOCAL_PROJECT_PATH": str(tmp_path),
        **extra,
    }
    done = run_job_python("pose_training", "-c", DRIVER, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("source", ["windows", "macos"])
def test_deeplabcut_builds_its_training_set_from_projects_zipped_on_windows_and_macos(
    aws, s3, run_job_python, tmp_path, source
):
    if source == "windows":
        body = build_zip(renamed(tiny.VIDEO, separator="\\", config_edit=windows_config))
    else:
        body = build_zip(
            [*renamed("souris-été"), (f"__MACOSX/{tiny.PROJECT}/._config.yaml", b"\0\5\26\7")],
            raw_encoding="utf-8",
        )
    result = run_driver(aws, s3, run_job_python, tmp_path, body)
    assert "refused" not in result, result
    assert any(name.endswith(".pickle") or name.endswith(".mat") for name in result["training_files"]), result
    assert any(name.startswith("CollectedData_") for name in result["training_files"])


def test_labels_of_another_scorer_give_deeplabcut_nothing_and_the_job_refuses_them_with_exit_65(
    aws, s3, run_job_python, tmp_path
):
    def other_scorer(name, text):
        return name.replace("CollectedData_orchard", "CollectedData_alice"), text

    body = build_zip(renamed(tiny.VIDEO, csv_edit=other_scorer))
    refused = run_driver(aws, s3, run_job_python, tmp_path / "checked", body)
    assert refused["exit_code"] == 65 and "scorer is 'orchard'" in refused["refused"]

    bypassed = run_job_python  # DeepLabCut alone: no training set, or an error, never a model of these labels
    s3.put_object(Bucket=BUCKET, Key="projects/p.zip", Body=body)
    env = {
        **client_env(aws.url),
        "PATH": "/usr/bin:/bin",
        "TGT_S3_BUCKET": BUCKET,
        "BYPASS_CHECK": "1",
        "DLC_PROJECT_PATH": "projects/p.zip",
        "OUTPUT_PATH": "models/x",
        "LOCAL_PROJECT_PATH": str(tmp_path / "bypassed"),
    }
    done = bypassed("pose_training", "-c", DRIVER, env=env)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    made = [] if done.returncode else json.loads(last).get("training_files", [])
    assert not any(name.endswith((".pickle", ".mat")) for name in made), done.stdout[-2000:]
