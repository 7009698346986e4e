"""What a job's image holds: a Dockerfile's pinned content, AWS framework images' catalogued content.

An import the image lacks must fail the job as it would on AWS, with the ModuleNotFoundError in the job's
FailureReason (SageMaker) or container reason (Batch); nothing is installed at run time except where AWS's
toolkits do it (script-mode training: the source dir's requirements.txt).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import textwrap
from pathlib import Path

import boto3
import pytest

from local_aws import containers, dockerfiles, framework_images, images
from local_aws.process import namespaced
from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.polling import watch_states
from tests.local_aws.test_batch import batch, log_lines  # noqa: F401  (the Batch queue fixture)

PYTORCH_TRAINING = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"
PYTORCH_TRAINING_GPU = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ROLE = "arn:aws:iam::123456789012:role/orchard-sagemaker-execution"
BUCKET = "image-tests"
# Builds of a cold cache (torch, numpy, ...) take minutes on the shared 2-core machine.
BUILD_TIMEOUT_S = 1500


@pytest.fixture
def job_root(tmp_path, monkeypatch) -> Path:
    """A folder of image folders that images.resolve searches first (orchard/<name> -> <root>/<name>)."""
    monkeypatch.setenv("ORCHARD_JOB_ROOTS", f"{tmp_path}{os.pathsep}{TEST_JOB_ROOT}")
    return tmp_path


def image_folder(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir()
    for relative, text in files.items():
        (folder / relative).write_text(textwrap.dedent(text))
    return folder


# ------------------------------------------------------------------------------------ Dockerfiles


def test_a_dockerfile_gives_the_image_its_pins_its_copied_files_and_its_bases_python(job_root):
    image_folder(
        job_root,
        "probe_image",
        {
            "Dockerfile": """\
            FROM python:3.9-slim
            WORKDIR /opt/app
            COPY deps.txt .
            RUN pip install --no-cache-dir -r deps.txt "six==1.16.0" && useradd app
            COPY main.py ./
            ENTRYPOINT ["python3", "/opt/app/main.py"]
            """,
            "deps.txt": "# the image's pinned set\nidna==3.7\n",
            "main.py": """\
            import os, sys
            print("python", ".".join(map(str, sys.version_info[:2])))
            import idna, six
            print("has", idna.__name__, six.__version__)
            print("files", sorted(os.listdir(".")))
            import unused  # in the build context, but never COPY'd: not in the image
            """,
            "unused.py": "",
            "requirements.txt": "requests==2.32.3\n",  # a file the Dockerfile does not use: no part of the image
        },
    )
    recipe = dockerfiles.interpret(job_root / "probe_image")
    assert recipe.python == "3.9" and recipe.requirements == ["idna==3.7", "six==1.16.0"]
    assert sorted(recipe.files) == ["deps.txt", "main.py"]
    assert recipe.not_reproduced == ["useradd app"]

    lines: list[str] = []
    container = containers.prepare(images.resolve("orchard/probe-image:1"), None, {}, lines.append)
    argv, cwd = namespaced(container.argv, container.cwd, container.mounts)  # WORKDIR bound as a container
    done = subprocess.run(argv, cwd=cwd, env=container.env, capture_output=True, text=True, timeout=60)

    assert "python 3.9" in done.stdout  # the base image's Python, not the sandbox's 3.11
    assert "has idna 1.16.0" in done.stdout
    assert "files ['deps.txt', 'main.py']" in done.stdout  # WORKDIR holds exactly what was COPY'd
    assert "ModuleNotFoundError: No module named 'unused'" in done.stderr
    assert any("FROM python:3.9-slim -> Python 3.9" in line for line in lines)


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        (
            "FROM deeplabcut/deeplabcut:3.0.0-core-cuda12.4-cudnn9\n",
            r"base image FROM 'deeplabcut/.*BASE_IMAGES",
        ),
        ("FROM python:3.11-slim\nRUN pip install numpy\n", r"'numpy' is not pinned.*name==version"),
        (
            "FROM python:3.11-slim\nRUN pip install -r requirements.txt\n",
            r"COPY requirements.txt before the RUN",
        ),
        ("FROM python:3.11-slim AS b\nFROM python:3.11-slim\nCOPY --from=b /x .\n", r"--from"),
    ],
)
def test_a_dockerfile_the_sandbox_cannot_reproduce_fails_naming_the_fix(tmp_path, dockerfile, message):
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "requirements.txt").write_text("numpy==2.4.6\n")
    with pytest.raises(dockerfiles.DockerfileError, match=message):
        dockerfiles.interpret(tmp_path)


def test_the_projects_images_are_derived_from_their_dockerfiles_only():
    include = Path(__file__).resolve().parents[2] / "include"
    for name in ("edge_compiler", "fruit_features_export", "pose_training", "aerial_pretraining"):
        recipe = dockerfiles.interpret(include / name)
        assert recipe.python.startswith("3.11") and recipe.requirements, name
        used = {"requirements.txt"} & set(recipe.files)
        leftovers = {p.name for p in (include / name).glob("*.txt")} - used
        assert not leftovers, f"{name}: {leftovers} is not used by its Dockerfile"


def test_a_batch_job_on_an_image_with_an_unknown_base_fails_clearly(batch, job_root):  # noqa: F811
    image_folder(
        job_root,
        "mystery_base",
        {"Dockerfile": 'FROM nvidia/cuda:12.4.0-runtime-ubuntu22.04\nCMD ["python3", "-c", "print(1)"]\n'},
    )
    job = submit_batch(batch, "mystery-base")

    assert job["status"] == "FAILED"
    assert "CannotPullContainerError" in job["statusReason"] and "nvidia/cuda" in job["statusReason"]
    assert "python:<version>" in job["container"]["reason"]


def test_a_batch_job_importing_what_its_image_lacks_fails_with_the_module_error(
    batch,  # noqa: F811
    job_root,
):
    image_folder(
        job_root,
        "bare_python",
        {
            "Dockerfile": 'FROM python:3.11-slim\nWORKDIR /job\nCOPY job.py .\nCMD ["python", "job.py"]\n',
            "job.py": "import sys\nprint('python', sys.version_info[:2])\nimport yaml\n",
        },
    )
    job = submit_batch(batch, "bare-python")

    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Essential container in task exited"
    assert "ModuleNotFoundError: No module named 'yaml'" in job["container"]["reason"]
    assert "python (3, 11)" in log_lines(job)


def submit_batch(batch, image: str) -> dict:  # noqa: F811
    batch.register_job_definition(
        jobDefinitionName=image,
        type="container",
        containerProperties={
            "image": f"{REGISTRY}/orchard/{image}:1.0",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    job_id = batch.submit_job(jobName=f"{image}-run", jobQueue="sandbox-queue", jobDefinition=image)["jobId"]
    watch_states(
        lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"],
        {"SUCCEEDED", "FAILED"},
        timeout_s=300,
    )
    return batch.describe_jobs(jobs=[job_id])["jobs"][0]


# ----------------------------------------------------------------------------- framework images


def test_framework_tags_map_to_their_catalogued_release_and_unknown_ones_fail():
    label, release, notes = framework_images.release_of(images.resolve(PYTORCH_TRAINING_GPU))
    assert (label, release.python, release.version) == ("torch-2.5.1", "3.11.9", "2.5.1")
    assert "numpy==1.26.4" in release.packages  # the 2.5 DLC pins numpy<2
    assert any("GPU image" in note and "CPU build" in note for note in notes)
    unknown = framework_images.UnknownFrameworkImage
    with pytest.raises(unknown, match=r"catalogued: .*pytorch-training:2\.5\.1"):
        framework_images.release_of(images.resolve(f"{REGISTRY}/pytorch-training:1.8.0-cpu-py36"))
    with pytest.raises(unknown, match="not py310"):
        framework_images.release_of(images.resolve(f"{REGISTRY}/pytorch-training:2.5.1-cpu-py310"))


def test_the_nearest_cpu_torch_build_is_used_and_said(tmp_path, monkeypatch):
    for name in (
        "torch-2.4.0+cpu-cp311-cp311-linux_x86_64.whl",
        "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl",
        "torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl",
    ):
        (tmp_path / name).touch()
    monkeypatch.setattr(framework_images, "CPU_WHEELS", tmp_path)
    assert framework_images.cpu_torch("2.4.0", "3.11") == ("torch==2.4.0+cpu", None)
    chosen, note = framework_images.cpu_torch("2.5.1", "3.11")
    assert chosen == "torch==2.4.0+cpu" and "nearest" in note  # 2.5.1 exists only for cp312


def sourcedir(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TRAIN_PY = """\
    import json, os, sys
    import numpy, torch
    import tifffile  # not in the PyTorch image: from the source dir's requirements.txt
    python = ".".join(map(str, sys.version_info[:2]))
    print("python", python, "torch", torch.__version__, "numpy", numpy.__version__)
    print("sum", float(torch.tensor(numpy.arange(4.0)).sum()))
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as model:
        model.write(json.dumps({"ok": tifffile.__name__}))
    """


def test_script_mode_training_runs_on_the_frameworks_python_with_its_requirements_installed(aws):
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(
        Bucket=BUCKET,
        Key="code/sourcedir.tar.gz",
        Body=sourcedir({"train.py": TRAIN_PY, "requirements.txt": "tifffile==2024.9.20\n"}),
    )
    sagemaker.create_training_job(
        TrainingJobName="framework-probe",
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": PYTORCH_TRAINING_GPU, "TrainingInputMode": "File"},
        HyperParameters={
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/sourcedir.tar.gz"),
        },
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    describe = lambda: sagemaker.describe_training_job(TrainingJobName="framework-probe")  # noqa: E731
    watch_states(
        lambda: describe()["TrainingJobStatus"], {"Completed", "Failed", "Stopped"}, timeout_s=BUILD_TIMEOUT_S
    )
    job = describe()
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    log = job_log("/aws/sagemaker/TrainingJobs", "framework-probe")
    assert "python 3.11 torch 2.13.0+cpu numpy 1.26.4" in log  # the tag's Python, the DLC's numpy<2
    assert "sum 6.0" in log
    assert "installs the CPU build of torch 2.5.1" in log and "using the nearest CPU build" in log


def test_a_processing_job_on_a_framework_image_installs_nothing_and_fails_on_the_missing_module(aws):
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    script = b"import numpy, torch\nprint('ok')\nimport tifffile\n"
    s3.put_object(Bucket=BUCKET, Key="prep/prepare.py", Body=script)
    s3.put_object(Bucket=BUCKET, Key="prep/requirements.txt", Body=b"tifffile==2024.9.20\n")  # not installed
    sagemaker.create_processing_job(
        ProcessingJobName="framework-prep",
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": PYTORCH_TRAINING,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/prepare.py"],
        },
        ProcessingInputs=[
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/prep",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    describe = lambda: sagemaker.describe_processing_job(ProcessingJobName="framework-prep")  # noqa: E731
    watch_states(
        lambda: describe()["ProcessingJobStatus"],
        {"Completed", "Failed", "Stopped"},
        timeout_s=BUILD_TIMEOUT_S,
    )
    job = describe()
    assert job["ProcessingJobStatus"] == "Failed"
    assert "ModuleNotFoundError: No module named 'tifffile'" in job["FailureReason"]
    assert "ok" in job_log("/aws/sagemaker/ProcessingJobs", "framework-prep")  # numpy and torch imported


def job_log(group: str, job_name: str) -> str:
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=job_name)["logStreams"]
    events = [
        e
        for s in streams
        for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
    ]
    return "\n".join(e["message"] for e in events)
