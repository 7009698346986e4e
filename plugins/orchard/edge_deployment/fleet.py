"""The fleet: the package signing key, and the IoT thing group, things, certificates, policy, role alias and
role the devices use (orchard.hooks.iot does the AWS calls). Nothing here logs or returns a device's private
key: it only ever travels from CreateKeysAndCertificate to Secrets Manager."""

from __future__ import annotations

import logging
from typing import Any

from orchard import naming
from orchard.edge_deployment.validation import with_folders
from orchard.errors import InputError
from orchard.settings import load_settings

log = logging.getLogger(__name__)


def signing_key(alias: str) -> str:
    from orchard import aws
    from orchard.operators.edge_package import ensure_signing_key

    return ensure_signing_key(aws.client("kms"), alias)


def fleet_spec(
    params: dict[str, Any],
    signing_key_arn: str,
    package_prefix: str,
    capture_prefix: str,
    created_by: str = "",
):
    from orchard.hooks.iot import FleetSpec

    settings = load_settings()
    params = with_folders(params)
    return FleetSpec(
        fleet_name=params["fleet_name"],
        device_names=tuple(params["device_names"]),
        capture_bucket=settings.data_bucket,
        capture_prefix=f"{capture_prefix}/{params['fleet_name']}",
        package_bucket=settings.artifacts_bucket,
        package_prefix=package_prefix,
        signing_key_arn=signing_key_arn,
        capture={
            "buffer_size": params["capture_buffer_size"],
            "batch_size": params["capture_batch_size"],
            "push_period_seconds": params["capture_push_period_seconds"],
        },
        simulated=bool(params.get("simulated_devices")),
        camera_images_uri=params.get("camera_images_uri") or "",
        poll_seconds=float(min(params["poll_seconds"], 30)),
        permissions_boundary_arn=device_boundary_arn(settings.sagemaker_execution_role_arn),
        created_by=created_by,
    )


DEVICE_BOUNDARY_POLICY = "orchard-edge-device-boundary"


def device_boundary_arn(role_arn_in_account: str) -> str:
    """The edge devices' permissions boundary (a managed policy the account admin creates from
    include/iam/edge_deployment_device_boundary.json), in the account of the pipeline's roles."""
    partition, account = role_arn_in_account.split(":")[1], role_arn_in_account.split(":")[4]
    return f"arn:{partition}:iam::{account}:policy/{DEVICE_BOUNDARY_POLICY}"


def provision_fleet(
    params: dict[str, Any], signing_key_arn: str, package_prefix: str, capture_prefix: str, run_id: str = ""
) -> dict:
    """The fleet, made on the first run and kept: devices keep their certificates across runs (new ones only
    with rotate_certificates); someone else's thing group is deployed to as it is."""
    from orchard.hooks.iot import IotHook

    settings = load_settings()
    created_by = naming.resource_name("iot_job", "edge_deployment", run_id) if run_id else ""
    spec = fleet_spec(params, signing_key_arn, package_prefix, capture_prefix, created_by)
    hook = IotHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
    try:
        fleet = hook.ensure_fleet(spec, rotate_certificates=bool(params.get("rotate_certificates")))
    except ValueError as error:
        raise InputError(str(error)) from None
    if not fleet["managed"]:
        log.info(
            "thing group %s is not orchard's: deploying to its %d things as they are (nothing modified)",
            spec.fleet_name,
            len(fleet["devices"]),
        )
    for device in fleet["devices"]:
        if device.get("certificate_id"):
            log.info(
                "device %s: certificate %s... (%s), provisioning bundle in secret %s",
                device["thing_name"],
                device["certificate_id"][:12],
                device["certificate"],
                device["secret_name"],
            )
    return {**fleet, "capture_bucket": spec.capture_bucket, "capture_prefix": spec.capture_prefix}
