"""The deploy step (`python -m deploy job-code`) and the DAG-side view of it (`orchard.job_code`).

What the deploy step writes is exactly what the DAGs compute from the settings, and a run whose code was
not deployed (or only in part) fails its input check with the deploy command in the message.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import boto3
import pytest
from moto import mock_aws

from deploy import __main__ as cli
from deploy import job_code as deploy
from orchard import job_code
from orchard.fruit_features.plan import JOB_FILES, job_code_uris
from orchard.settings import Settings

SETTINGS = Settings(artifacts_bucket="artifacts-x", image_tag="1.2.3")


@pytest.fixture
def s3(monkeypatch):
    for name in ("ORCHARD_ARTIFACTS_BUCKET", "ORCHARD_IMAGE_TAG", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts-x")
        yield client


def read(s3, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_the_deployed_objects_are_where_the_dags_look(s3):
    deployed = deploy.deploy(bucket="artifacts-x", image_tag="1.2.3", s3=s3)

    assert sorted(deployed) == sorted(job_code.PACKAGES)
    # aerial: script mode archive with the folder's files at its root, and the same files one by one
    archive = read(s3, job_code.sourcedir_uri(SETTINGS, "aerial_pretraining"))
    assert job_code.sourcedir_uri(SETTINGS, "aerial_pretraining") == (
        "s3://artifacts-x/job-code/1.2.3/aerial_pretraining/sourcedir.tar.gz"
    )
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getnames()
        train = tar.extractfile("train.py").read()
    assert {"train.py", "probe.py", "prepare_dataset.py", "requirements.txt"} <= set(members)
    assert all("/" not in m for m in members)
    files_uri = job_code.files_uri(SETTINGS, "aerial_pretraining")
    on_disk = (deploy.INCLUDE / "aerial_pretraining" / "train.py").read_bytes()
    assert read(s3, f"{files_uri}train.py") == train == on_disk
    # fruit_features: the very URIs the cluster request names
    for name, uri in job_code_uris(SETTINGS).items():
        assert read(s3, uri) == (deploy.INCLUDE / "fruit_features" / name).read_bytes()
    assert set(job_code_uris(SETTINGS)) == set(JOB_FILES)
    # the manifest records each object's digest; the Dockerfile (images are built apart) is not shipped
    manifest = json.loads(read(s3, job_code.manifest_uri(SETTINGS, "aerial_pretraining")))
    assert manifest["objects"]["sourcedir.tar.gz"]["sha256"] == hashlib.sha256(archive).hexdigest()
    fruit = json.loads(read(s3, job_code.manifest_uri(SETTINGS, "fruit_features")))
    assert "Dockerfile" not in fruit["files"] and "bootstrap.sh" in fruit["files"]
    assert job_code.check_deployed(s3, SETTINGS, "fruit_features")["image_tag"] == "1.2.3"


def test_the_archive_is_reproducible(tmp_path):
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "run.sh").write_text("echo\n")
    first = deploy.sourcedir_archive(deploy.package_files(tmp_path))
    (tmp_path / "a.py").touch()  # a new mtime only
    assert deploy.sourcedir_archive(deploy.package_files(tmp_path)) == first
    assert gzip.decompress(first)  # a real gzip stream


def test_a_run_without_deployed_code_fails_naming_the_deploy_command(s3):
    with pytest.raises(job_code.JobCodeNotDeployed) as missing:
        job_code.check_deployed(s3, SETTINGS, "aerial_pretraining")
    message = str(missing.value)
    assert "s3://artifacts-x/job-code/1.2.3/aerial_pretraining/manifest.json does not exist" in message
    assert "make deploy" in message and "--bucket artifacts-x --image-tag 1.2.3" in message

    # another release's code does not count: the tag is part of the key
    deploy.deploy(bucket="artifacts-x", image_tag="1.2.2", s3=s3)
    with pytest.raises(job_code.JobCodeNotDeployed):
        job_code.check_deployed(s3, SETTINGS, "fruit_features")


def test_a_partial_upload_is_reported_with_the_missing_objects(s3):
    deploy.deploy(bucket="artifacts-x", image_tag="1.2.3", s3=s3)
    s3.delete_object(Bucket="artifacts-x", Key="job-code/1.2.3/fruit_features/files/bootstrap.sh")
    with pytest.raises(
        job_code.JobCodeNotDeployed,
        match="missing s3://artifacts-x/job-code/1.2.3/"
        r"fruit_features/files/bootstrap\.sh",
    ):
        job_code.check_deployed(s3, SETTINGS, "fruit_features")


def test_a_missing_bucket_is_named(s3):
    with pytest.raises(job_code.JobCodeNotDeployed, match="artifacts bucket 'nope-bucket' does not exist"):
        job_code.check_deployed(s3, Settings(artifacts_bucket="nope-bucket"), "fruit_features")
    with pytest.raises(deploy.DeployError, match="bucket 'nope-bucket' does not exist"):
        deploy.deploy(bucket="nope-bucket", s3=s3)


def test_the_cli_defaults_to_the_settings_and_rejects_bad_input(s3, monkeypatch, capsys):
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", "artifacts-x")
    monkeypatch.setattr(deploy, "boto3_client", lambda region: s3)
    assert cli.main(["job-code", "--only", "fruit_features"]) == 0
    assert "fruit_features: " in capsys.readouterr().out
    tag = Settings().image_tag
    assert s3.head_object(Bucket="artifacts-x", Key=f"job-code/{tag}/fruit_features/manifest.json")

    assert cli.main(["job-code", "--only", "nope"]) == 1
    assert "unknown package(s) nope" in capsys.readouterr().err
    assert cli.main(["job-code", "--bucket", "Bad_Bucket"]) == 1
    assert "not valid" in capsys.readouterr().err
