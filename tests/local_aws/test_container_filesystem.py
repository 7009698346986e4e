"""Contract 1: a job's container filesystem. Job code sees /opt/ml, /opt/ml/processing/... and a Batch job's
mount points at their real paths, each job in its own mount namespace; nothing leaks to the host or to
another job; a machine that cannot make a namespace fails the job saying what to install."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import boto3
import pytest

from local_aws import jobs, process
from local_aws.s3io import tar_gz
from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.polling import watch_states
from tests.local_aws.test_batch import batch, log_lines, run  # noqa: F401 (batch: a fixture)
from tests.local_aws.training_jobs import BUCKET, ROLE, SKLEARN_IMAGE, training_request

PROBE = TEST_JOB_ROOT / "fs_probe"
PROCESS_SCRIPT = (PROBE / "process.py").read_bytes()
HOST_OPT_ML = Path("/opt/ml")


def probe_training(name: str, **hyperparameters: str) -> dict:
    request = training_request(name)
    request["HyperParameters"] = {
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/probe.tar.gz"),
        **{key: json.dumps(value) for key, value in hyperparameters.items()},
    }
    del request["CheckpointConfig"]
    return request


def wait_training(name: str) -> dict:
    sagemaker = boto3.client("sagemaker")
    watch_states(
        lambda: sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )
    return sagemaker.describe_training_job(TrainingJobName=name)


def model_files(s3, name: str) -> dict[str, str]:
    body = s3.get_object(Bucket=BUCKET, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return {
            m.name.removeprefix("./"): archive.extractfile(m).read().decode() for m in archive if m.isfile()
        }


@pytest.fixture
def probe_code(s3):
    s3.put_object(
        Bucket=BUCKET, Key="code/probe.tar.gz", Body=tar_gz({"train.py": (PROBE / "train.py").read_bytes()})
    )
    return s3


def test_training_code_writing_opt_ml_model_ends_in_model_tar_gz(probe_code):
    boto3.client("sagemaker").create_training_job(**probe_training("fs-train"))

    job = wait_training("fs-train")

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = json.loads(model_files(probe_code, "fs-train")["x"])
    assert model == {"rows": 3, "hyperparameters": ["sagemaker_program", "sagemaker_submit_directory"]}
    assert not any(HOST_OPT_ML.iterdir()), "the job wrote to the host's /opt/ml"


def test_two_concurrent_jobs_see_only_their_own_files(probe_code):
    sagemaker = boto3.client("sagemaker")
    root = str(jobs.jobs_root())
    for name in ("fs-left", "fs-right"):  # each waits while the other runs, then lists what it sees
        sagemaker.create_training_job(**probe_training(name, marker=name, wait="2", **{"jobs-root": root}))

    results = {name: wait_training(name) for name in ("fs-left", "fs-right")}

    for name, job in results.items():
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        assert sorted(model_files(probe_code, name)) == sorted(["x", name])
    left, right = results["fs-left"], results["fs-right"]
    assert left["TrainingStartTime"] < right["TrainingEndTime"]  # they ran at the same time
    assert right["TrainingStartTime"] < left["TrainingEndTime"]
    assert not any(HOST_OPT_ML.iterdir()), "a job wrote to the host's /opt/ml"


def processing_request(name: str, entrypoint: list[str], inputs: dict[str, str]) -> dict:
    return dict(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": entrypoint},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}
        },
        ProcessingInputs=[
            {
                "InputName": local.rsplit("/", 1)[-1],
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/{prefix}",
                    "LocalPath": local,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
            for local, prefix in inputs.items()
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/processed/{name}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        StoppingCondition={"MaxRuntimeInSeconds": 300},
    )


def wait_processing(name: str) -> dict:
    sagemaker = boto3.client("sagemaker")
    watch_states(
        lambda: sagemaker.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )
    return sagemaker.describe_processing_job(ProcessingJobName=name)


@pytest.fixture
def processing_data(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/a.txt", Body=b"1\n2\n")
    s3.put_object(Bucket=BUCKET, Key="raw/b.txt", Body=b"1\n")
    return s3


def test_processing_code_reads_and_writes_the_real_processing_paths(processing_data):
    processing_data.put_object(Bucket=BUCKET, Key="pcode/process.py", Body=PROCESS_SCRIPT)
    request = processing_request(
        "fs-process",
        ["python3", "/opt/ml/processing/input/code/process.py"],
        {"/opt/ml/processing/input/code": "pcode", "/opt/ml/processing/input/data": "raw"},
    )
    boto3.client("sagemaker").create_processing_job(**request)

    job = wait_processing("fs-process")

    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    result = processing_data.get_object(Bucket=BUCKET, Key="processed/fs-process/result.json")["Body"].read()
    assert json.loads(result) == {
        "counts": {"a.txt": 2, "b.txt": 1},
        "cwd": "/opt/ml/processing/input/code",
        "job": "fs-process",
        "hosts": ["algo-1"],
    }  # /opt/ml/config/*.json


def test_a_framework_processor_runproc_script_cds_into_its_code_folder(processing_data):
    """The SageMaker Python SDK's FrameworkProcessor runs runproc.sh: `cd /opt/ml/processing/input/code/`."""
    runproc = (PROBE / "runproc.sh").read_bytes()
    processing_data.put_object(Bucket=BUCKET, Key="fp/entrypoint/runproc.sh", Body=runproc)
    processing_data.put_object(
        Bucket=BUCKET,
        Key="fp/code/sourcedir.tar.gz",
        Body=tar_gz({"process.py": (PROBE / "process.py").read_bytes()}),
    )
    request = processing_request(
        "fs-runproc",
        ["/bin/bash", "/opt/ml/processing/input/entrypoint/runproc.sh"],
        {
            "/opt/ml/processing/input/entrypoint": "fp/entrypoint",
            "/opt/ml/processing/input/code": "fp/code",
            "/opt/ml/processing/input/data": "raw",
        },
    )
    boto3.client("sagemaker").create_processing_job(**request)

    job = wait_processing("fs-runproc")

    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    result = processing_data.get_object(Bucket=BUCKET, Key="processed/fs-runproc/result.json")["Body"].read()
    assert json.loads(result)["counts"] == {"a.txt": 2, "b.txt": 1}


def test_a_processing_input_outside_opt_ml_processing_fails_naming_the_rule(processing_data):
    processing_data.put_object(Bucket=BUCKET, Key="pcode/process.py", Body=PROCESS_SCRIPT)
    request = processing_request(
        "fs-bad-path",
        ["python3", "/opt/ml/processing/input/code/process.py"],
        {"/opt/ml/processing/input/code": "pcode", "/data/raw": "raw"},
    )
    boto3.client("sagemaker").create_processing_job(**request)

    job = wait_processing("fs-bad-path")

    assert job["ProcessingJobStatus"] == "Failed"
    assert "LocalPath '/data/raw' must begin with /opt/ml/processing/" in job["FailureReason"]


def test_a_batch_job_sees_its_workdir_and_mount_points(batch, tmp_path):  # noqa: F811
    data, reference = tmp_path / "data", tmp_path / "reference"
    data.mkdir()
    reference.mkdir()
    (data / "in.txt").write_text("hello volume")
    (reference / "ref.txt").write_text("v1")
    batch.register_job_definition(
        jobDefinitionName="fs-probe",
        type="container",
        containerProperties={
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/fs-probe:1.0",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "volumes": [
                {"name": "data", "host": {"sourcePath": str(data)}},
                {"name": "reference", "host": {"sourcePath": str(reference)}},
            ],
            "mountPoints": [
                {"sourceVolume": "data", "containerPath": "/data"},
                {"sourceVolume": "reference", "containerPath": "/reference", "readOnly": True},
            ],
        },
    )

    job, _ = run(batch, "fs-probe")

    lines = log_lines(job)
    assert job["status"] == "SUCCEEDED", lines
    assert "cwd=/opt/program" in lines and "reference says v1" in lines
    assert any(line.startswith("read-only mount refused the write") for line in lines)
    assert (data / "out.txt").read_text() == "HELLO VOLUME"  # the volume is the host folder itself
    assert not (reference / "written.txt").exists()
    assert not any(Path("/data").iterdir()), "the job wrote to the host's /data (an empty mount point)"


def test_a_mount_point_naming_no_volume_fails_saying_so(batch):  # noqa: F811
    batch.register_job_definition(
        jobDefinitionName="fs-no-volume",
        type="container",
        containerProperties={
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/fs-probe:1.0",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "mountPoints": [{"sourceVolume": "missing", "containerPath": "/data"}],
        },
    )

    job, _ = run(batch, "fs-no-volume")

    assert job["status"] == "FAILED"
    assert "sourceVolume 'missing', which is not in volumes" in job["statusReason"]


def test_without_a_mount_namespace_the_job_fails_saying_what_to_install(probe_code, monkeypatch):
    monkeypatch.setenv(process.UNSHARE_VARIABLE, "/nonexistent/unshare")
    boto3.client("sagemaker").create_training_job(**probe_training("fs-no-unshare"))

    job = wait_training("fs-no-unshare")

    assert job["TrainingJobStatus"] == "Failed"
    assert "no '/nonexistent/unshare' on PATH" in job["FailureReason"]
    assert "install util-linux, which provides unshare" in job["FailureReason"]
    assert "run the sandbox as root or enable unprivileged user namespaces" in job["FailureReason"]


def test_an_unshare_that_is_refused_is_reported_the_same_way(tmp_path, monkeypatch):
    refusing = tmp_path / "unshare"
    refusing.write_text("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
    refusing.chmod(0o755)
    monkeypatch.setenv(process.UNSHARE_VARIABLE, str(refusing))

    with pytest.raises(process.NamespaceUnavailable, match="Operation not permitted.*install util-linux"):
        process.run_process(
            ["true"], cwd=tmp_path, env={}, log=print, stop=threading.Event(), mounts={"/opt/ml": tmp_path}
        )


def test_mounts_are_ordered_so_none_hides_another_s_host_folder(tmp_path):
    job = tmp_path / "job"
    mounts = {"/tmp": job / "tmp", "/opt/ml/extra": tmp_path / "extra", "/opt/ml": job / "opt" / "ml"}

    order = [target for target, _ in process._mount_order(mounts)]

    assert order.index("/opt/ml") < order.index("/opt/ml/extra")  # a parent before its children
    if Path("/tmp") in tmp_path.parents:  # /tmp covers the others' host folders: it goes last
        assert order[-1] == "/tmp"
    assert process.container_path(job / "opt" / "ml" / "model", mounts) == "/opt/ml/model"
    assert process.container_path(tmp_path / "elsewhere", {}) == str(tmp_path / "elsewhere")


def test_a_mount_inside_another_gets_its_mount_point_in_that_folder_not_on_the_host(tmp_path):
    job, extra = tmp_path / "job", tmp_path / "extra"
    job.mkdir()
    extra.mkdir()
    (extra / "f.txt").write_text("nested\n")
    (job / "own.txt").write_text("own\n")
    lines: list[str] = []

    outcome = process.run_process(
        ["sh", "-c", "cat /opt/ml/own.txt /opt/ml/extra/f.txt; pwd; touch /opt/ml/extra/made"],
        cwd=job,
        env={"PATH": "/usr/bin:/bin"},
        log=lines.append,
        stop=threading.Event(),
        mounts={"/opt/ml/extra/": extra, "/opt/ml": job},
    )

    assert outcome.exit_code == 0, lines
    assert [line.strip() for line in lines] == ["own", "nested", "/opt/ml"]
    assert (job / "extra").is_dir() and not Path("/opt/ml/extra").exists()
    assert (extra / "made").exists() and not any(HOST_OPT_ML.iterdir())
