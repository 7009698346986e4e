"""The promotion gate's decision, and register_model's retry check: it reads every page of
ListModelPackages (moto pages at 100, as AWS's max)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from orchard.aerial_pretraining.promotion import decide_promotion, find_run_package, register_backbone

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


def test_gate_promotes_only_when_the_margin_is_met():
    seed = decide_promotion(0.732, 0.685, 0.01)  # the seed's numbers
    assert seed["promoted"] is True and "beats baseline 0.6850 + margin 0.0100" in seed["reason"]
    short = decide_promotion(0.690, 0.685, 0.01)
    assert short["promoted"] is False and "does not beat" in short["reason"]
    assert decide_promotion(0.695, 0.685, 0.01)["promoted"] is True  # exactly the margin counts


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


class _Hook:
    """The two SageMakerHook calls register_backbone makes, on the moto client."""

    def __init__(self, client):
        self.conn = client

    def create_model_package_group(self, group: str, description: str) -> None:
        if not self.conn.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
            self.conn.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription=description
            )


def test_register_returns_the_gates_decision_with_the_package_and_a_retry_reuses_it(client, params):
    settings = type("Settings", (), {"region": "us-east-1"})()
    pretrained = {"Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/pretrain/model.tar.gz"}}}
    evaluation = {"new_mAP": 0.732, "baseline_mAP": 0.685, "evaluation_uri": "s3://b/evaluation.json"}

    first = register_backbone(_Hook(client), params, settings, RUN_ID, pretrained, evaluation)
    again = register_backbone(_Hook(client), params, settings, RUN_ID, pretrained, evaluation)

    assert first["promoted"] is True and "beats baseline 0.6850 + margin 0.0100" in first["reason"]
    assert again == {**first, "reused": True}  # the retry finds the package, registers nothing new
    [package] = client.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert package["ModelPackageArn"] == first["model_package_arn"]
    described = client.describe_model_package(ModelPackageName=first["model_package_arn"])
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == "s3://b/pretrain/model.tar.gz" and "-inference:" in container["Image"]
    assert described["ModelApprovalStatus"] == "PendingManualApproval"


PERSON_APPROVED = {
    "approved": True,
    "required": True,
    "timed_out": False,
    "by": "alice",
    "at": "2026-12-07T03:00:00+00:00",
    "note": "approved by alice",
}
NOT_REQUIRED = {
    "approved": True,
    "required": False,
    "timed_out": False,
    "by": None,
    "at": None,
    "note": "approval not required: require_approval is off (an automated run)",
}


@pytest.fixture
def registry(in_process_moto, monkeypatch):
    """moto with the sandbox's UpdateModelPackage (local_aws/model_registry.py: only the fields given change,
    as on AWS; moto's own erases the run_id property a retry looks the package up by)."""
    from moto.sagemaker import models as moto_sm

    from local_aws.model_registry import _update_model_package

    monkeypatch.setattr(moto_sm.SageMakerModelBackend, "update_model_package", _update_model_package)
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


def _register_backbone(client, params, approval):
    settings = type("Settings", (), {"region": "us-east-1"})()
    pretrained = {"Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/pretrain/model.tar.gz"}}}
    evaluation = {"new_mAP": 0.732, "baseline_mAP": 0.685, "evaluation_uri": "s3://b/evaluation.json"}
    return register_backbone(_Hook(client), params, settings, RUN_ID, pretrained, evaluation, approval)


def test_a_persons_approval_in_airflow_registers_the_package_approved_naming_who_and_when(registry, params):
    first = _register_backbone(registry, params, PERSON_APPROVED)
    again = _register_backbone(registry, params, PERSON_APPROVED)  # a retry

    described = registry.describe_model_package(ModelPackageName=first["model_package_arn"])
    assert described["ModelApprovalStatus"] == "Approved"  # the registry does not ask a second time
    assert described["ApprovalDescription"] == (
        f"Approved in Airflow by alice at 2026-12-07T03:00:00+00:00 (run {RUN_ID})"
    )
    assert described["CustomerMetadataProperties"]["run_id"] == RUN_ID  # still found by a retry
    assert first["ModelApprovalStatus"] == "Approved" and again == {**first, "reused": True}
    assert len(registry.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) == 1


def test_an_automated_run_leaves_the_package_to_a_persons_approval_in_the_registry(registry, params):
    registered = _register_backbone(registry, params, NOT_REQUIRED)
    described = registry.describe_model_package(ModelPackageName=registered["model_package_arn"])
    assert described["ModelApprovalStatus"] == "PendingManualApproval"  # nobody decided
    assert "ApprovalDescription" not in described
    assert registered["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_retry_after_the_package_was_created_but_not_yet_approved_approves_it(registry, params):
    pending = _register_backbone(registry, params, NOT_REQUIRED)  # as if the approval call never came
    approved = _register_backbone(registry, params, PERSON_APPROVED)
    assert approved["model_package_arn"] == pending["model_package_arn"] and approved["reused"] is True
    described = registry.describe_model_package(ModelPackageName=approved["model_package_arn"])
    assert described["ModelApprovalStatus"] == "Approved"


def test_the_approval_description_fits_the_registrys_1024_characters():
    from orchard.aerial_pretraining.promotion import registry_approval

    status = registry_approval({**PERSON_APPROVED, "by": "a" * 2000}, RUN_ID)
    assert status["ModelApprovalStatus"] == "Approved" and len(status["ApprovalDescription"]) == 1024
