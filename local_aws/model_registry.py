"""UpdateModelPackage as AWS does it: it changes only the fields a request gives, within their constraints.

moto's update sets every field it does not get to None: an update that approves a package erased its
CustomerMetadataProperties (orchard finds a run's package by its ``run_id`` property: a retry would register
the run twice) and an update of properties alone erased its ModelApprovalStatus. The API reference
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html) makes every field but
ModelPackageArn optional, and has CustomerMetadataPropertiesToRemove for removing properties, so a field left
out is left as it is and CustomerMetadataProperties adds or replaces keys. Constraints enforced here:

- ModelApprovalStatus: ``Approved | Rejected | PendingManualApproval`` (moto checks it, on create too);
- ApprovalDescription: 0 to 1024 characters (ValidationException beyond). CreateModelPackage has no such
  field (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html): an SDK
  refuses it before sending.
"""

from __future__ import annotations

from typing import Any

from moto.sagemaker import models as moto_sm
from moto.sagemaker.exceptions import ValidationError

APPROVAL_DESCRIPTION_MAX = 1024


def _update_model_package(
    self: moto_sm.SageMakerModelBackend,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str] | None,
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    if package is None:
        raise ValidationError(f"Model package {model_package_arn} not found")
    if approval_description is not None and len(approval_description) > APPROVAL_DESCRIPTION_MAX:
        raise ValidationError(
            f"1 validation error detected: Value at 'approvalDescription' failed to satisfy constraint: "
            f"Member must have length less than or equal to {APPROVAL_DESCRIPTION_MAX}"
        )
    if model_approval_status is not None:
        package.set_model_approval_status(model_approval_status)  # validates the enum
    if approval_description is not None:
        package.approval_description = approval_description
    if customer_metadata_properties:
        package.customer_metadata_properties = {
            **(package.customer_metadata_properties or {}),
            **customer_metadata_properties,
        }
    if customer_metadata_properties_to_remove and package.customer_metadata_properties:
        package.remove_customer_metadata_property(customer_metadata_properties_to_remove)
    if additional_inference_specifications_to_add is not None:
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.modifications_done()
    return package.arn


def install() -> None:
    moto_sm.SageMakerModelBackend.update_model_package = _update_model_package
