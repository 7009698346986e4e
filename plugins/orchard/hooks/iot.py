"""An IoT fleet for edge deployment: thing type, thing group, things, certificates, policy, role alias.

This replaces SageMaker Edge Manager's device fleet (retired 2024-04-26). Everything is idempotent, so a
retried task finds what its first try made. A device's private key exists once, in the
CreateKeysAndCertificate answer: it goes straight into the device's provisioning bundle in Secrets Manager
(with its certificate and agent config), and nowhere else — not S3, not XCom, not a log line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

WAITERS = Path(__file__).resolve().parent.parent / "waiters"
JOB_EXECUTION_TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "REMOVED")


@dataclass(frozen=True)
class FleetSpec:
    fleet_name: str
    device_names: tuple[str, ...]
    capture_bucket: str
    capture_prefix: str
    package_bucket: str
    package_prefix: str
    signing_key_arn: str
    capture: dict[str, Any]
    simulated: bool = False
    camera_images_uri: str = ""
    poll_seconds: float = 5.0
    # The device role is created under this permissions boundary
    # (include/iam/edge_deployment_device_boundary.json): the pipeline's policy lets it create orchard-edge-*
    # roles only with it, so it cannot escalate privileges.
    permissions_boundary_arn: str = ""

    @property
    def thing_type(self) -> str:
        return "orchard-edge-device"

    @property
    def policy_name(self) -> str:
        return f"orchard-edge-{self.fleet_name}"

    @property
    def role_alias(self) -> str:
        return f"orchard-edge-{self.fleet_name}"

    @property
    def role_name(self) -> str:
        return f"orchard-edge-{self.fleet_name}"[:64]

    def secret_name(self, device: str) -> str:
        return f"orchard/edge/{self.fleet_name}/{device}/provisioning"


class IotHook(AwsBaseHook):
    """`iot` client with orchard's `job_completed` waiter (waiters/iot.json) and fleet provisioning."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["client_type"] = "iot"
        super().__init__(*args, **kwargs)

    @cached_property
    def waiter_path(self) -> Path:
        return WAITERS / "iot.json"

    def _service_client(self, service: str):
        """A client of another service on the same connection (IAM for the role, Secrets Manager for keys)."""
        clients = self.__dict__.setdefault("_other_clients", {})
        if service not in clients:
            clients[service] = AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type=service).conn
        return clients[service]

    # -------------------------------------------------------------------------------------- fleet
    def ensure_fleet(self, spec: FleetSpec) -> dict[str, Any]:
        iot = self.conn
        _ignore_exists(iot.create_thing_type, thingTypeName=spec.thing_type, thingTypeProperties={
            "thingTypeDescription": "orchard edge device (agent include/edge_agent)",
            "searchableAttributes": ["fleet", "simulated"]})
        _ignore_exists(iot.create_thing_group, thingGroupName=spec.fleet_name)
        group_arn = iot.describe_thing_group(thingGroupName=spec.fleet_name)["thingGroupArn"]
        role_arn = self._ensure_role(spec)
        alias_arn = self._ensure_role_alias(spec, role_arn)
        self._ensure_policy(spec, alias_arn)
        endpoints = {kind: iot.describe_endpoint(endpointType=kind)["endpointAddress"]
                     for kind in ("iot:CredentialProvider", "iot:Jobs")}
        devices = [self._ensure_device(spec, name, index, endpoints) for index, name in enumerate(spec.device_names)]
        return {"fleet_name": spec.fleet_name, "thing_group_arn": group_arn, "role_alias": spec.role_alias,
                "role_alias_arn": alias_arn, "role_arn": role_arn, "policy_name": spec.policy_name, "devices": devices}

    def _ensure_role(self, spec: FleetSpec) -> str:
        iam = self._service_client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "credentials.iot.amazonaws.com"}}]}
        try:
            arn = iam.get_role(RoleName=spec.role_name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            boundary = spec.permissions_boundary_arn
            arn = iam.create_role(RoleName=spec.role_name, AssumeRolePolicyDocument=json.dumps(trust),
                                  Description=f"orchard edge devices of fleet {spec.fleet_name}",
                                  **({"PermissionsBoundary": boundary} if boundary else {}))["Role"]["Arn"]
        iam.put_role_policy(RoleName=spec.role_name, PolicyName="edge-device", PolicyDocument=json.dumps(device_role_policy(spec)))
        return arn

    def _ensure_role_alias(self, spec: FleetSpec, role_arn: str) -> str:
        iot = self.conn
        try:
            return iot.describe_role_alias(roleAlias=spec.role_alias)["roleAliasDescription"]["roleAliasArn"]
        except iot.exceptions.ResourceNotFoundException:
            return iot.create_role_alias(roleAlias=spec.role_alias, roleArn=role_arn, credentialDurationSeconds=3600)["roleAliasArn"]

    def _ensure_policy(self, spec: FleetSpec, alias_arn: str) -> None:
        iot = self.conn
        document = json.dumps(device_iot_policy(alias_arn))
        try:
            iot.get_policy(policyName=spec.policy_name)
        except iot.exceptions.ResourceNotFoundException:
            iot.create_policy(policyName=spec.policy_name, policyDocument=document)

    def _ensure_device(self, spec: FleetSpec, name: str, index: int, endpoints: dict[str, str]) -> dict[str, Any]:
        iot, secrets = self.conn, self._service_client("secretsmanager")
        attributes = {"fleet": spec.fleet_name, "provisioning_secret": spec.secret_name(name)}
        if spec.simulated:
            attributes["simulated"] = "true"
            if spec.camera_images_uri:
                attributes["camera_uri"] = f"{spec.camera_images_uri.rstrip('/')}/{index}/"
        try:
            thing = iot.describe_thing(thingName=name)
            iot.update_thing(thingName=name, attributePayload={"attributes": attributes, "merge": True})
        except iot.exceptions.ResourceNotFoundException:
            thing = iot.create_thing(thingName=name, thingTypeName=spec.thing_type, attributePayload={"attributes": attributes})
        iot.add_thing_to_thing_group(thingGroupName=spec.fleet_name, thingName=name)
        certificate_arn = self._usable_certificate(spec, name)
        if certificate_arn is None:
            certificate_arn = self._new_certificate(spec, name, endpoints, secrets)
        iot.attach_policy(policyName=spec.policy_name, target=certificate_arn)
        iot.attach_thing_principal(thingName=name, principal=certificate_arn)  # the device powers on
        return {"thing_name": name, "thing_arn": thing["thingArn"], "certificate_arn": certificate_arn,
                "certificate_id": certificate_arn.rsplit("/", 1)[-1], "secret_name": spec.secret_name(name)}

    def _usable_certificate(self, spec: FleetSpec, name: str) -> str | None:
        """The thing's certificate from an earlier try, if its provisioning secret exists; else clean it up."""
        iot, secrets = self.conn, self._service_client("secretsmanager")
        principals = iot.list_thing_principals(thingName=name)["principals"]
        try:
            bundle = json.loads(secrets.get_secret_value(SecretId=spec.secret_name(name))["SecretString"])
        except secrets.exceptions.ResourceNotFoundException:
            bundle = {}
        usable = [p for p in principals if p.rsplit("/", 1)[-1] == bundle.get("certificateId")]
        for stale in set(principals) - set(usable):  # a certificate whose key was never stored is useless
            self._delete_certificate(name, stale)
        return usable[0] if usable else None

    def _new_certificate(self, spec: FleetSpec, name: str, endpoints: dict[str, str], secrets) -> str:
        created = self.conn.create_keys_and_certificate(setAsActive=True)
        bundle = {
            "certificateId": created["certificateId"],
            "certificatePem": created["certificatePem"],
            "privateKey": created["keyPair"]["PrivateKey"],
            "config": agent_config(spec, name, endpoints, self.conn.meta.region_name),
        }
        secret = spec.secret_name(name)
        try:
            secrets.create_secret(Name=secret, SecretString=json.dumps(bundle),
                                  Description=f"orchard edge device {name}: certificate, private key, agent config")
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=secret, SecretString=json.dumps(bundle))
        certificate_arn = created["certificateArn"]
        del created, bundle  # the key lives on only in Secrets Manager
        return certificate_arn

    def _delete_certificate(self, thing: str, certificate_arn: str) -> None:
        iot = self.conn
        certificate_id = certificate_arn.rsplit("/", 1)[-1]
        _ignore_missing(iot.detach_thing_principal, thingName=thing, principal=certificate_arn)
        attached = (_ignore_missing(iot.list_attached_policies, target=certificate_arn) or {}).get("policies", [])
        for policy in attached:
            iot.detach_policy(policyName=policy["policyName"], target=certificate_arn)
        _ignore_missing(iot.update_certificate, certificateId=certificate_id, newStatus="INACTIVE")
        _ignore_missing(iot.delete_certificate, certificateId=certificate_id, forceDelete=True)

    # ----------------------------------------------------------------------------------- teardown
    def delete_fleet(self, spec: FleetSpec) -> list[str]:
        """Remove what ensure_fleet made (the thing type stays: deleting one takes a 5-minute deprecation)."""
        iot, secrets, removed = self.conn, self._service_client("secretsmanager"), []
        for name in spec.device_names:
            principals = (_ignore_missing(iot.list_thing_principals, thingName=name) or {}).get("principals", [])
            for certificate_arn in principals:
                self._delete_certificate(name, certificate_arn)
                removed.append(f"certificate {certificate_arn.rsplit('/', 1)[-1][:12]}...")
            if _ignore_missing(iot.delete_thing, thingName=name) is not None:
                removed.append(f"thing {name}")
            if _ignore_missing(secrets.delete_secret, SecretId=spec.secret_name(name), ForceDeleteWithoutRecovery=True) is not None:
                removed.append(f"secret {spec.secret_name(name)}")
        if _ignore_missing(iot.delete_thing_group, thingGroupName=spec.fleet_name) is not None:
            removed.append(f"thing group {spec.fleet_name}")
        if _ignore_missing(iot.delete_policy, policyName=spec.policy_name) is not None:
            removed.append(f"policy {spec.policy_name}")
        if _ignore_missing(iot.delete_role_alias, roleAlias=spec.role_alias) is not None:
            removed.append(f"role alias {spec.role_alias}")
        iam = self._service_client("iam")
        _ignore_missing(iam.delete_role_policy, RoleName=spec.role_name, PolicyName="edge-device")
        if _ignore_missing(iam.delete_role, RoleName=spec.role_name) is not None:
            removed.append(f"role {spec.role_name}")
        return removed

    # ----------------------------------------------------------------------------------------- jobs
    def job_executions(self, job_id: str) -> list[dict[str, Any]]:
        iot, outcomes = self.conn, []
        for page in iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id):
            for summary in page["executionSummaries"]:
                thing = summary["thingArn"].rsplit("/", 1)[-1]
                described = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
                outcomes.append({"device": thing, "status": described["status"],
                                 "details": (described.get("statusDetails") or {}).get("detailsMap") or {}})
        return sorted(outcomes, key=lambda o: o["device"])


def agent_config(spec: FleetSpec, device: str, endpoints: dict[str, str], region: str) -> dict[str, Any]:
    """The agent's config (the seed's sagemaker_edge_config, in orchard's words)."""
    return {
        "device_name": device,
        "fleet_name": spec.fleet_name,
        "region": region,
        "credentials_endpoint": f"https://{endpoints['iot:CredentialProvider']}",
        "jobs_endpoint": f"https://{endpoints['iot:Jobs']}",
        "role_alias": spec.role_alias,
        "root_ca_file": "AmazonRootCA1.pem",
        "capture": {"bucket": spec.capture_bucket, "prefix": spec.capture_prefix, **spec.capture},
        "poll_seconds": spec.poll_seconds,
    }


def device_role_policy(spec: FleetSpec) -> dict[str, Any]:
    """What a device may do with its temporary credentials: read packages, write captures, verify, run its jobs."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{spec.package_bucket}/{spec.package_prefix}*"},
        {"Effect": "Allow", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{spec.capture_bucket}/{spec.capture_prefix.rstrip('/')}/${{credentials-iot:ThingName}}/*"},
        {"Effect": "Allow", "Action": "kms:Verify", "Resource": spec.signing_key_arn},
        {"Effect": "Allow", "Action": ["iot:StartNextPendingJobExecution", "iot:UpdateJobExecution",
                                       "iot:DescribeJobExecution", "iot:GetPendingJobExecutions"],
         "Resource": "arn:aws:iot:*:*:thing/${credentials-iot:ThingName}"},
    ]}


def device_iot_policy(alias_arn: str) -> dict[str, Any]:
    """The certificate's IoT policy: exchange the certificate for the role alias's credentials, nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": alias_arn},
    ]}


def _ignore_exists(call, *args, **kwargs):
    """`call(...)`, or None when what it creates exists already (a retry)."""
    try:
        return call(*args, **kwargs)
    except Exception as error:
        if "AlreadyExists" in type(error).__name__ or "ResourceAlreadyExists" in str(error):
            return None
        raise


def _ignore_missing(call, *args, **kwargs):
    """`call(...)`, or None when what it reads or removes is gone already (teardown of a half-made fleet)."""
    try:
        return call(*args, **kwargs)
    except Exception as error:
        if "NotFound" in type(error).__name__ or "NoSuchEntity" in type(error).__name__:
            return None
        raise


def as_dict(spec: FleetSpec) -> dict[str, Any]:
    return {**asdict(spec), "device_names": list(spec.device_names)}
