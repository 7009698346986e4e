"""The model registry's approval fields in the sandbox (local_aws/model_registry.py), as the API reference says:
ModelApprovalStatus takes Approved | Rejected | PendingManualApproval only, ApprovalDescription at most 1024
characters, and UpdateModelPackage changes only the fields it is given (API_UpdateModelPackage.html)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

GROUP = "registry-contract"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"


def _package(sagemaker, status: str = "PendingManualApproval") -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["application/x-npy"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"run_id": "manual__1", "test_mAP": "0.73"},
    )["ModelPackageArn"]


@pytest.fixture
def sagemaker(aws):
    # The sandbox's own answer is what is tested, not botocore's client-side check of the enum.
    client = boto3.client("sagemaker", config=boto3.session.Config(parameter_validation=False))
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    return client


def _code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_an_approval_status_outside_the_three_values_is_refused(sagemaker):
    assert _code(lambda: _package(sagemaker, status="Approve")) == "ValidationException"
    arn = _package(sagemaker)
    refused = _code(
        lambda: sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="approved")
    )
    assert refused == "ValidationException"
    assert (
        sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]
        == "PendingManualApproval"
    )


def test_an_approval_description_over_1024_characters_is_refused(sagemaker):
    arn = _package(sagemaker)
    too_long = lambda: sagemaker.update_model_package(  # noqa: E731
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="x" * 1025
    )
    assert _code(too_long) == "ValidationException"
    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="x" * 1024
    )


def test_an_approval_keeps_the_packages_metadata_and_an_update_without_status_keeps_the_status(sagemaker):
    arn = _package(sagemaker)
    sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription="Approved in Airflow by alice",
    )
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "Approved in Airflow by alice"
    # moto set every field left out to None: the run_id a retry looks the package up by was gone
    assert described["CustomerMetadataProperties"] == {"run_id": "manual__1", "test_mAP": "0.73"}

    sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"reviewed": "yes"})
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"  # not given: left as it was
    assert described["ApprovalDescription"] == "Approved in Airflow by alice"
    assert described["CustomerMetadataProperties"] == {
        "run_id": "manual__1",
        "test_mAP": "0.73",
        "reviewed": "yes",
    }
    sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["reviewed"])
    assert (
        "reviewed" not in sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    )


def test_update_model_package_is_authorized_on_the_package_it_names(aws):
    """IAM: UpdateModelPackage names its package by ModelPackageArn; aerial's policy allows it on its group's
    packages only (include/iam/aerial_pretraining.json)."""
    iam = boto3.client("iam")
    policy = json.load(open("include/iam/aerial_pretraining.json"))
    iam.create_user(UserName="aerial")
    iam.put_user_policy(UserName="aerial", PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="aerial")["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    admin = boto3.client("sagemaker")
    for group in ("aerial-dino-vit", "someone-else"):
        admin.create_model_package_group(ModelPackageGroupName=group)
    mine, theirs = (
        admin.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE}],
                "SupportedContentTypes": ["application/x-npy"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
        for group in ("aerial-dino-vit", "someone-else")
    )
    aerial = boto3.client("sagemaker", **creds)
    aerial.update_model_package(
        ModelPackageArn=mine, ModelApprovalStatus="Approved", ApprovalDescription="ok"
    )
    assert _code(
        lambda: aerial.update_model_package(ModelPackageArn=theirs, ModelApprovalStatus="Approved")
    ) in ("AccessDeniedException", "AccessDenied")
