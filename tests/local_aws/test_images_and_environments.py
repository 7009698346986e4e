"""Image → job folder mapping, Dockerfile reading and the per-image cached environments."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from local_aws import containers, environments, images
from tests.conftest import TEST_JOB_ROOT


@pytest.mark.parametrize(
    ("uri", "repository"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/pose-training:0.1.0", "orchard/pose-training"),
        ("orchard/pose-training:latest", "orchard/pose-training"),
        ("localhost:5000/orchard/fruit-features", "orchard/fruit-features"),
        ("123.dkr.ecr.eu-west-3.amazonaws.com/orchard/x@sha256:abc", "orchard/x"),
    ],
)
def test_repository_of(uri, repository):
    assert images.repository_of(uri) == repository


def test_an_orchard_image_maps_to_its_folder():
    image = images.resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/hello-batch:1.0")
    assert image.folder == TEST_JOB_ROOT / "hello_batch"


def test_aws_framework_images_run_script_mode():
    image = images.resolve(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"
    )
    assert image.is_framework


def test_an_unmapped_image_says_how_to_map_it():
    with pytest.raises(images.UnmappedImage, match=r"orchard/<name>.*include/"):
        images.resolve("docker.io/library/busybox:1.36")


def test_dockerfile_gives_entrypoint_cmd_workdir_and_env(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        'FROM python:3.11 AS build\nENTRYPOINT ["wrong"]\n'
        'FROM python:3.11-slim\nWORKDIR /opt/app\nENV A=1 B="two words"\n'
        'ENTRYPOINT ["python", "/opt/app/main.py"]\nCMD ["--flag"]\n'
    )
    spec = containers.read_dockerfile(tmp_path)
    assert spec.entrypoint == ["python", "/opt/app/main.py"]
    assert spec.cmd == ["--flag"]
    assert spec.workdir == "/opt/app"
    assert spec.env == {"A": "1", "B": "two words"}


def test_a_container_runs_in_its_own_environment_not_airflows(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/airflow/lives")
    monkeypatch.setenv("AIRFLOW_HOME", "/leaks")
    image = images.resolve("orchard/failing-batch:1")
    container = containers.prepare(image, None, {"JOB_VAR": "1"}, log=lambda line: None)

    assert container.argv[1] == "/opt/job/job.py"  # the WORKDIR path as is: the image's copy is bound there
    assert container.mounts == {"/opt/job": container.cwd}
    original = TEST_JOB_ROOT / "failing_batch" / "job.py"
    assert (container.cwd / "job.py").read_bytes() == original.read_bytes()
    assert "PYTHONPATH" not in container.env and "AIRFLOW_HOME" not in container.env
    probe = subprocess.run(
        [container.argv[0], "-c", "import airflow"], env=container.env, capture_output=True
    )
    assert probe.returncode != 0  # the job's python does not see Airflow's packages


def test_environments_are_built_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHARD_ENV_CACHE", str(tmp_path))
    built: list[str] = []

    first = environments.ensure_env("", "probe", log=built.append)
    second = environments.ensure_env("", "probe", log=built.append)
    other = environments.ensure_env("# another image\n", "probe", log=built.append)

    assert first == second != other
    assert sum("building job environment" in line for line in built) == 2
    assert (first / "python").exists()


def test_concurrent_first_uses_build_one_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHARD_ENV_CACHE", str(tmp_path))
    built: list[str] = []
    threads = [
        threading.Thread(target=environments.ensure_env, args=("", "race", built.append)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum("building job environment" in line for line in built) == 1
    assert len([p for p in Path(tmp_path).iterdir() if p.is_dir()]) == 1
