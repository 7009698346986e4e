"""register_model's retry check reads every page of ListModelPackages (moto pages at 100, as AWS's max)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from orchard.aerial_pretraining.promotion import find_run_package

GROUP = "aerial-dino-vit"
RUN_ID = "manual__2026-11-21T10:00:00+00:00"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"


def _register(client, run_id: str) -> str:
    return client.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["application/x-npy"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"run_id": run_id},
    )["ModelPackageArn"]


@pytest.fixture
def client(in_process_moto):
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


@pytest.mark.parametrize("position", ["oldest", "newest"])
def test_a_retry_finds_the_runs_package_beyond_the_first_page(client, position):
    others = [f"scheduled__2026-10-{day:02d}T00:00:00+00:00#{n}" for day in range(1, 22) for n in range(5)]
    if position == "oldest":
        mine = _register(client, RUN_ID)
    for run in others:  # 105 other runs: more than one page of 100
        _register(client, run)
    if position == "newest":
        mine = _register(client, RUN_ID)
    # the first page alone (what register_model read before) misses one of the two
    assert find_run_package(client, GROUP, RUN_ID) == mine


def test_a_first_run_finds_nothing(client):
    _register(client, "another-run")
    assert find_run_package(client, GROUP, RUN_ID) is None


def _first_page_only(client, run_id):  # the pre-issue-12 check, for the record of what it missed
    for package in client.list_model_packages(ModelPackageGroupName=GROUP).get("ModelPackageSummaryList", []):
        if (
            client.describe_model_package(ModelPackageName=package["ModelPackageArn"])
            .get("CustomerMetadataProperties", {})
            .get("run_id")
            == run_id
        ):
            return package["ModelPackageArn"]
    return None


def test_the_first_page_alone_misses_a_package(client):
    for n in range(105):  # ListModelPackages' default order: CreationTime ascending, the newest on page 2
        _register(client, f"other-{n}")
    mine = _register(client, RUN_ID)
    assert _first_page_only(client, RUN_ID) is None
    assert find_run_package(client, GROUP, RUN_ID) == mine
