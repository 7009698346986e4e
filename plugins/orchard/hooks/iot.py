"""An IoT fleet for edge deployment: thing type, thing group, things, certificates, policy, role alias.

This replaces SageMaker Edge Manager's device fleet (retired 2024-04-26). Everything is idempotent, so a
retried task — or the next run — finds what the first one made: a device keeps its identity (certificate)
across runs until rotation is asked for, and a fleet is deleted only by an explicit `delete_fleet`, which
removes only what is recorded as orchard's. A fleet orchard did not create is deployed to, never modified.
A device's private key exists once, in the CreateKeysAndCertificate answer: it goes straight into the
device's provisioning bundle in Secrets Manager (with its certificate and agent config), and nowhere
else — not S3, not XCom, not a log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from orchard.aws import at_once

WAITERS = Path(__file__).resolve().parent.parent / "waiters"
JOB_EXECUTION_TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "REMOVED")
# What orchard created is recorded as orchard's: IoT things and thing groups by this attribute (IoT things
# take no tags), the IAM role and the provisioning secrets by this tag. Nothing else is ever deleted.
MANAGED_ATTRIBUTE = "orchard_managed"
# The thing group also records the run that created it (its IoT job id: a legal attribute value), so the
# run's cleanup can remove a fleet it created itself when the run fails (nothing relies on it yet).
CREATED_BY_ATTRIBUTE = "orchard_created_by"
ORCHARD_TAG = {"Key": "orchard:managed-by", "Value": "orchard"}
# Devices provisioned or removed at once; each may have 3 IoT calls in flight (`_detach_certificate`), so
# the hook's clients keep CONNECTIONS connections (botocore keeps 10: an 11th concurrent call opens and
# drops one, with a warning in the task log).
DEVICE_CONCURRENCY = 8
CONNECTIONS = 3 * DEVICE_CONCURRENCY + 8
UNREAD = object()
# DetachThingPrincipal "is asynchronous. It might take several seconds for the detachment to propagate"
# (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html): meanwhile
# DeleteCertificate answers DeleteConflictException and DeleteThing InvalidRequestException ("still attached
# to one or more principals"). Either is retried after each of these waits (31 s in all), then the removal
# fails naming what is still attached.
DETACH_WAITS_S = (1, 2, 4, 8, 16)
ENDPOINT_TYPES = (
    "iot:CredentialProvider",
    "iot:Jobs",
)  # remove_fleet's `group` when the caller has not read it


@dataclass(frozen=True)
class FleetRemoval:
    """What `IotHook.remove_fleet` deleted, apart from what it left on purpose (not orchard's), with why."""

    removed: list[str]
    left: list[str]


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
    created_by: str = ""  # the creating run's IoT job id (CREATED_BY_ATTRIBUTE)

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

    @cached_property
    def clients(self):
        """This hook's session and its clients (orchard.aws.SessionClients): IoT and the other services
        it calls share one session, one AssumeRole, one client config."""
        from orchard.aws import SessionClients

        return SessionClients(self, max_pool_connections=CONNECTIONS)

    @cached_property
    def conn(self):
        return self.clients.client("iot")

    def service_client(self, service: str):
        """A client of another service on the same session (IAM for the role, Secrets Manager for keys,
        SageMaker for the run's jobs)."""
        return self.clients.client(service)

    # -------------------------------------------------------------------------------------- fleet
    def ensure_fleet(self, spec: FleetSpec, rotate_certificates: bool = False) -> dict[str, Any]:
        """The fleet, made once and kept: a second run finds its things and certificates and changes nothing
        (`rotate_certificates` gives each orchard device a new certificate and revokes its old one).

        A thing group orchard did not create (no `orchard_managed` attribute) is a fleet someone else runs:
        it is deployed to as it is and never modified — no thing, certificate, policy or attribute changes.
        """
        iot = self.conn
        try:
            group = iot.describe_thing_group(thingGroupName=spec.fleet_name)
        except iot.exceptions.ResourceNotFoundException:
            group = None
        if group is not None and not _is_orchards(group.get("thingGroupProperties")):
            return self._existing_fleet(spec, group)
        if group is None:
            self._refuse_foreign_names(spec)
            attributes = {MANAGED_ATTRIBUTE: "true"}
            if spec.created_by:
                attributes[CREATED_BY_ATTRIBUTE] = spec.created_by
            group = iot.create_thing_group(  # its answer has the group's ARN: no describe after it
                thingGroupName=spec.fleet_name,
                thingGroupProperties={
                    "thingGroupDescription": "orchard edge fleet (orchard.hooks.iot)",
                    "attributePayload": {"attributes": attributes},
                },
            )
        # What the devices need is independent: made at once, then the devices at once. A thing is created
        # with the thing type, its certificate gets the policy, and a new certificate's bundle names the
        # endpoints, so the devices come after them.
        iam, _ = self.service_client("iam"), self.service_client("secretsmanager")  # built in this thread
        _, (role_arn, alias_arn), *endpoints = at_once(
            partial(
                _ignore_exists,
                iot.create_thing_type,
                thingTypeName=spec.thing_type,
                thingTypeProperties={
                    "thingTypeDescription": "orchard edge device (agent include/edge_agent)",
                    "searchableAttributes": ["fleet", "simulated"],
                },
            ),
            partial(self._ensure_device_access, spec, iam),
            *(partial(iot.describe_endpoint, endpointType=kind) for kind in ENDPOINT_TYPES),
        )
        addresses = {kind: e["endpointAddress"] for kind, e in zip(ENDPOINT_TYPES, endpoints, strict=True)}
        devices = at_once(
            *(
                partial(self._ensure_device, spec, name, index, addresses, rotate_certificates)
                for index, name in enumerate(spec.device_names)
            ),
            limit=DEVICE_CONCURRENCY,
        )
        return {
            "fleet_name": spec.fleet_name,
            "thing_group_arn": group["thingGroupArn"],
            "managed": True,
            "role_alias": spec.role_alias,
            "role_alias_arn": alias_arn,
            "role_arn": role_arn,
            "policy_name": spec.policy_name,
            "devices": devices,
        }

    def _existing_fleet(self, spec: FleetSpec, group: dict[str, Any]) -> dict[str, Any]:
        """Someone else's fleet: read its members, change nothing."""
        iot = self.conn
        names = [
            name
            for page in iot.get_paginator("list_things_in_thing_group").paginate(
                thingGroupName=spec.fleet_name
            )
            for name in page["things"]
        ]
        if not names:
            raise ValueError(
                f"thing group {spec.fleet_name} exists, is not orchard's and has no things: "
                "orchard deploys to an existing fleet as it is; add its devices to it, or "
                "pick a new fleet_name"
            )
        names = sorted(names)
        described = at_once(
            *(partial(iot.describe_thing, thingName=name) for name in names), limit=DEVICE_CONCURRENCY
        )
        devices = [
            {"thing_name": name, "thing_arn": thing["thingArn"], "managed": False}
            for name, thing in zip(names, described, strict=True)
        ]
        return {
            "fleet_name": spec.fleet_name,
            "thing_group_arn": group["thingGroupArn"],
            "managed": False,
            "devices": devices,
        }

    def _refuse_foreign_names(self, spec: FleetSpec) -> None:
        """Before a new fleet is recorded as orchard's: the names it will own must be free."""
        iot, iam = self.conn, self.service_client("iam")
        policy, alias, role_is_foreign = at_once(
            partial(_ignore_missing, iot.get_policy, policyName=spec.policy_name),
            partial(_ignore_missing, iot.describe_role_alias, roleAlias=spec.role_alias),
            partial(self._role_is_foreign, spec.role_name, iam),
        )
        taken = [f"IoT policy {spec.policy_name}"] if policy is not None else []
        taken += [f"role alias {spec.role_alias}"] if alias is not None else []
        taken += [f"IAM role {spec.role_name}"] if role_is_foreign else []
        if taken:
            raise ValueError(
                f"fleet {spec.fleet_name}: {', '.join(taken)} exist and are not orchard's; "
                "orchard modifies only what it created: pick another fleet_name or remove them"
            )

    def _role_is_foreign(self, role_name: str, iam: Any) -> bool:
        """Whether a role of that name exists without orchard's tag (ListRoleTags: NoSuchEntity when none)."""
        tags = _ignore_missing(iam.list_role_tags, RoleName=role_name)
        return tags is not None and not _has_orchard_tag(tags.get("Tags", []))

    def _ensure_device_access(self, spec: FleetSpec, iam: Any) -> tuple[str, str]:
        """The devices' role, then its inline policy beside its role alias and the alias's IoT policy (both
        need only the role's ARN): (role ARN, role alias ARN)."""
        role_arn = self._ensure_role(spec, iam)
        _, alias_arn = at_once(
            partial(
                iam.put_role_policy,
                RoleName=spec.role_name,
                PolicyName="edge-device",
                PolicyDocument=json.dumps(device_role_policy(spec)),
            ),
            partial(self._ensure_role_alias_and_policy, spec, role_arn),
        )
        return role_arn, alias_arn

    def _ensure_role_alias_and_policy(self, spec: FleetSpec, role_arn: str) -> str:
        alias_arn = self._ensure_role_alias(spec, role_arn)
        self._ensure_policy(spec, alias_arn)
        return alias_arn

    def _ensure_role(self, spec: FleetSpec, iam: Any) -> str:
        """The devices' role (made under the permissions boundary), without its inline policy."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": "credentials.iot.amazonaws.com"},
                }
            ],
        }
        try:
            return iam.get_role(RoleName=spec.role_name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            boundary = spec.permissions_boundary_arn
            return iam.create_role(
                RoleName=spec.role_name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"orchard edge devices of fleet {spec.fleet_name}",
                Tags=[ORCHARD_TAG],
                **({"PermissionsBoundary": boundary} if boundary else {}),
            )["Role"]["Arn"]

    def _ensure_role_alias(self, spec: FleetSpec, role_arn: str) -> str:
        iot = self.conn
        try:
            return iot.describe_role_alias(roleAlias=spec.role_alias)["roleAliasDescription"]["roleAliasArn"]
        except iot.exceptions.ResourceNotFoundException:
            return iot.create_role_alias(
                roleAlias=spec.role_alias, roleArn=role_arn, credentialDurationSeconds=3600
            )["roleAliasArn"]

    def _ensure_policy(self, spec: FleetSpec, alias_arn: str) -> None:
        iot = self.conn
        document = json.dumps(device_iot_policy(alias_arn))
        try:
            iot.get_policy(policyName=spec.policy_name)
        except iot.exceptions.ResourceNotFoundException:
            iot.create_policy(policyName=spec.policy_name, policyDocument=document)

    def _ensure_device(
        self, spec: FleetSpec, name: str, index: int, endpoints: dict[str, str], rotate: bool
    ) -> dict[str, Any]:
        iot = self.conn
        attributes = {
            MANAGED_ATTRIBUTE: "true",
            "fleet": spec.fleet_name,
            "provisioning_secret": spec.secret_name(name),
        }
        if spec.simulated:
            attributes["simulated"] = "true"
            if spec.camera_images_uri:
                attributes["camera_uri"] = f"{spec.camera_images_uri.rstrip('/')}/{index}/"
        try:
            thing = iot.describe_thing(thingName=name)
        except iot.exceptions.ResourceNotFoundException:
            thing = iot.create_thing(
                thingName=name, thingTypeName=spec.thing_type, attributePayload={"attributes": attributes}
            )
        else:
            if (thing.get("attributes") or {}).get(MANAGED_ATTRIBUTE) != "true":
                raise ValueError(
                    f"thing {name} exists and is not orchard's: orchard does not modify a "
                    "device it did not create. Deploy to its own thing group (fleet_name), or "
                    "pick another device name"
                )
            iot.update_thing(thingName=name, attributePayload={"attributes": attributes, "merge": True})
        iot.add_thing_to_thing_group(thingGroupName=spec.fleet_name, thingName=name)
        current = self._recorded_certificate(spec, name)
        certificate_arn, created = current, False
        if current is None or rotate:
            certificate_arn, created = self._new_certificate(spec, name, endpoints), True
        iot.attach_policy(policyName=spec.policy_name, target=certificate_arn)
        iot.attach_thing_principal(thingName=name, principal=certificate_arn)  # the device powers on
        if rotate and current is not None and current != certificate_arn:
            self._detach_certificate(name, current)  # the old identity is revoked once the new one is on
            self._delete_detached_certificate(current)
        return {
            "thing_name": name,
            "thing_arn": thing["thingArn"],
            "certificate_arn": certificate_arn,
            "certificate_id": certificate_arn.rsplit("/", 1)[-1],
            "secret_name": spec.secret_name(name),
            "certificate": "created" if created else "kept",
            "managed": True,
        }

    def _recorded_certificate(self, spec: FleetSpec, name: str, active_only: bool = True) -> str | None:
        """The ARN of the certificate orchard made for this device (recorded in its provisioning secret): the
        ACTIVE one, or with `active_only` off in any status (a removal cut short after making it INACTIVE
        still deletes it); None if none. A certificate orchard did not record is someone else's: it is never
        touched."""
        iot, secrets = self.conn, self.service_client("secretsmanager")
        try:
            bundle = json.loads(secrets.get_secret_value(SecretId=spec.secret_name(name))["SecretString"])
        except secrets.exceptions.ResourceNotFoundException:
            return None
        described = _ignore_missing(iot.describe_certificate, certificateId=bundle.get("certificateId", ""))
        if described is None:
            return None
        if active_only and described["certificateDescription"]["status"] != "ACTIVE":
            return None
        return described["certificateDescription"]["certificateArn"]

    def _new_certificate(self, spec: FleetSpec, name: str, endpoints: dict[str, str]) -> str:
        secrets = self.service_client("secretsmanager")
        created = self.conn.create_keys_and_certificate(setAsActive=True)
        bundle = {
            "certificateId": created["certificateId"],
            "certificatePem": created["certificatePem"],
            "privateKey": created["keyPair"]["PrivateKey"],
            "config": agent_config(spec, name, endpoints, self.conn.meta.region_name),
        }
        secret = spec.secret_name(name)
        try:
            secrets.create_secret(
                Name=secret,
                SecretString=json.dumps(bundle),
                Tags=[ORCHARD_TAG],
                Description=f"orchard edge device {name}: certificate, private key, agent config",
            )
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=secret, SecretString=json.dumps(bundle))
        certificate_arn = created["certificateArn"]
        del created, bundle  # the key lives on only in Secrets Manager
        return certificate_arn

    def _detach_certificate(self, thing: str, certificate_arn: str) -> None:
        """What DeleteCertificate requires first: a certificate with no policy or thing attached, not ACTIVE
        (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html). The three steps
        are independent of each other, so they go at once."""
        iot = self.conn
        certificate_id = certificate_arn.rsplit("/", 1)[-1]

        def detach_policies() -> None:
            attached = (_ignore_missing(iot.list_attached_policies, target=certificate_arn) or {}).get(
                "policies", []
            )
            for policy in attached:
                iot.detach_policy(policyName=policy["policyName"], target=certificate_arn)

        at_once(
            lambda: _ignore_missing(iot.detach_thing_principal, thingName=thing, principal=certificate_arn),
            detach_policies,
            lambda: _ignore_missing(
                iot.update_certificate, certificateId=certificate_id, newStatus="INACTIVE"
            ),
        )

    def _delete_detached_certificate(self, certificate_arn: str) -> None:
        """Delete a certificate `_detach_certificate` detached, once its detachment has propagated."""
        iot = self.conn

        def things() -> list[str]:
            return (_ignore_missing(iot.list_principal_things, principal=certificate_arn) or {}).get(
                "things", []
            )

        _once_detached(
            partial(
                iot.delete_certificate, certificateId=certificate_arn.rsplit("/", 1)[-1], forceDelete=True
            ),
            f"certificate {certificate_arn}",
            lambda: [f"thing {name}" for name in things()],
        )

    # ----------------------------------------------------------------------------------- teardown
    def delete_fleet(self, spec: FleetSpec) -> list[str]:
        """`remove_fleet` in one list of lines for a person: what went, then what stayed and why."""
        removal = self.remove_fleet(spec)
        return [*removal.removed, *removal.left]

    def remove_fleet(self, spec: FleetSpec, group: Any = UNREAD) -> FleetRemoval:
        """Delete what orchard made for this fleet — an explicit action, never the end of a run. Only what is
        recorded as orchard's goes: things with `orchard_managed`, the certificate recorded in each one's
        provisioning secret, the group, and the policy, role alias and role of an orchard group. A fleet
        orchard did not create is left as it is (the thing type stays: deleting one takes 5 minutes).
        `group`: the thing group's DescribeThingGroup answer (None: there is none) when the caller has read it.

        Independent removals go at once (one round trip each instead of one after the other): the devices,
        each in its own order, and the role alias and role beside them. Every device's certificate is
        detached first, then the devices are removed: AWS takes seconds to propagate a DetachThingPrincipal
        (DETACH_WAITS_S), and these waits overlap. What AWS orders stays ordered: a certificate's
        detachments before its deletion (`_detach_certificate`), the IoT policy after every
        certificate is detached from it (DeletePolicy refuses a policy attached to a certificate:
        https://docs.aws.amazon.com/iot/latest/apireference/API_DeletePolicy.html), the role's inline policy
        before the role (https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html). And what
        marks a resource as orchard's goes after it, so a removal cut short is completed by the next one
        (the sweep): each thing after its certificate and secret, the group after everything."""
        iot = self.conn
        if group is UNREAD:
            group, members = at_once(
                partial(_ignore_missing, iot.describe_thing_group, thingGroupName=spec.fleet_name),
                partial(self._group_members, spec),
            )
        else:
            members = self._group_members(spec) if group is not None else []
        if group is not None and not _is_orchards(group.get("thingGroupProperties")):
            return FleetRemoval(
                [], [f"nothing: thing group {spec.fleet_name} is not orchard's (left as it is)"]
            )
        names = sorted(set(spec.device_names) | set(members))
        things = at_once(
            *(partial(_ignore_missing, iot.describe_thing, thingName=name) for name in names),
            limit=DEVICE_CONCURRENCY,
        )
        ours = [name for name, thing in zip(names, things, strict=True) if _is_orchards_thing(thing)]
        # Clients are built here, in one thread (a boto3 session is not thread-safe; its clients are), and
        # only those needed: a sweep that finds nothing builds neither.
        secrets = self.service_client("secretsmanager") if ours else None
        iam = self.service_client("iam") if group is not None else None
        recorded = at_once(
            *(partial(self._detach_recorded_certificate, spec, name) for name in ours),
            limit=DEVICE_CONCURRENCY,
        )
        devices = [
            partial(self._remove_device, spec, name, certificate, secrets)
            for name, certificate in zip(ours, recorded, strict=True)
        ]
        access = partial(self._remove_device_access, spec, iam) if iam is not None else lambda: []
        *done, access_removed = at_once(*devices, access, limit=DEVICE_CONCURRENCY + 1)
        removed = [line for lines, _ in done for line in lines]
        left = [line for _, lines in done for line in lines]
        if group is None:
            return FleetRemoval(removed, left)
        if _ignore_missing(iot.delete_policy, policyName=spec.policy_name) is not None:
            removed.append(f"policy {spec.policy_name}")
        removed += access_removed
        if _ignore_missing(iot.delete_thing_group, thingGroupName=spec.fleet_name) is not None:
            removed.append(f"thing group {spec.fleet_name}")
        return FleetRemoval(removed, left)

    def _group_members(self, spec: FleetSpec) -> list[str]:
        """The things in the fleet's group ([] when there is no group)."""
        pages = self.conn.get_paginator("list_things_in_thing_group").paginate(thingGroupName=spec.fleet_name)
        try:
            return [name for page in pages for name in page["things"]]
        except self.conn.exceptions.ResourceNotFoundException:
            return []

    def _detach_recorded_certificate(self, spec: FleetSpec, name: str) -> str | None:
        """The device's recorded certificate (in any status), detached; None when it has none."""
        recorded = self._recorded_certificate(spec, name, active_only=False)
        if recorded is not None:
            self._detach_certificate(name, recorded)
        return recorded

    def _remove_device(
        self, spec: FleetSpec, name: str, recorded: str | None, secrets: Any
    ) -> tuple[list[str], list[str]]:
        """One orchard device's detached certificate (`recorded`), secret and thing, in that order: (removed,
        left) lines."""
        iot, removed = self.conn, []
        if recorded is not None:
            self._delete_detached_certificate(recorded)
            removed.append(f"certificate {recorded.rsplit('/', 1)[-1][:12]}...")
        secret = _ignore_missing(
            secrets.delete_secret, SecretId=spec.secret_name(name), ForceDeleteWithoutRecovery=True
        )
        if secret is not None:
            removed.append(f"secret {spec.secret_name(name)}")
        principals = (_ignore_missing(iot.list_thing_principals, thingName=name) or {}).get("principals", [])
        others = [p for p in principals if p != recorded]  # orchard's may still be listed as it propagates
        if others:
            return removed, [f"thing {name} kept: it holds {len(others)} certificate(s) not orchard's"]

        def attached() -> list[str]:
            listed = _ignore_missing(iot.list_thing_principals, thingName=name) or {}
            return [f"principal {p}" for p in listed.get("principals", [])]

        if _once_detached(partial(iot.delete_thing, thingName=name), f"thing {name}", attached) is not None:
            removed.append(f"thing {name}")
        return removed, []

    def _remove_device_access(self, spec: FleetSpec, iam: Any) -> list[str]:
        """The role alias, then the devices' role if orchard's (its tag), its inline policy first as DeleteRole
        requires. A role that is not there answers ListRoleTags with NoSuchEntity."""
        removed = []
        if _ignore_missing(self.conn.delete_role_alias, roleAlias=spec.role_alias) is not None:
            removed.append(f"role alias {spec.role_alias}")
        tags = _ignore_missing(iam.list_role_tags, RoleName=spec.role_name)
        if tags is None or not _has_orchard_tag(tags.get("Tags", [])):
            return removed
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
                outcomes.append(
                    {
                        "device": thing,
                        "status": described["status"],
                        "details": (described.get("statusDetails") or {}).get("detailsMap") or {},
                    }
                )
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
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{spec.package_bucket}/{spec.package_prefix}*",
            },
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{spec.capture_bucket}/{spec.capture_prefix.rstrip('/')}/${{credentials-iot:ThingName}}/*",
            },
            {"Effect": "Allow", "Action": "kms:Verify", "Resource": spec.signing_key_arn},
            {
                "Effect": "Allow",
                "Action": [
                    "iot:StartNextPendingJobExecution",
                    "iot:UpdateJobExecution",
                    "iot:DescribeJobExecution",
                    "iot:GetPendingJobExecutions",
                ],
                "Resource": "arn:aws:iot:*:*:thing/${credentials-iot:ThingName}",
            },
        ],
    }


def device_iot_policy(alias_arn: str) -> dict[str, Any]:
    """The certificate's IoT policy: exchange the certificate for the role alias's credentials, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": alias_arn},
        ],
    }


def created_by(group_properties: dict[str, Any] | None) -> str:
    """The IoT job id of the run that created an orchard thing group ("" if unknown or not orchard's)."""
    return (((group_properties or {}).get("attributePayload") or {}).get("attributes") or {}).get(
        CREATED_BY_ATTRIBUTE, ""
    )


def _is_orchards_thing(thing: dict[str, Any] | None) -> bool:
    return thing is not None and (thing.get("attributes") or {}).get(MANAGED_ATTRIBUTE) == "true"


def _is_orchards(group_properties: dict[str, Any] | None) -> bool:
    attributes = ((group_properties or {}).get("attributePayload") or {}).get("attributes") or {}
    return attributes.get(MANAGED_ATTRIBUTE) == "true"


def _has_orchard_tag(tags: list[dict[str, str]]) -> bool:
    return any(t.get("Key") == ORCHARD_TAG["Key"] and t.get("Value") == ORCHARD_TAG["Value"] for t in tags)


def _ignore_exists(call, *args, **kwargs):
    """`call(...)`, or None when what it creates exists already (a retry)."""
    try:
        return call(*args, **kwargs)
    except Exception as error:
        if "AlreadyExists" in type(error).__name__ or "ResourceAlreadyExists" in str(error):
            return None
        raise


def _still_attached(error: Exception) -> bool:
    """AWS's answer to deleting what a detachment not yet propagated still holds: DeleteCertificate's
    DeleteConflictException, DeleteThing's InvalidRequestException "... still attached to one or more
    principals" (not in DeleteThing's reference; what IoT answers, as the AWS IoT device SDKs' CI waits for)."""
    code = (getattr(error, "response", None) or {}).get("Error", {}).get("Code")
    return code == "DeleteConflictException" or (
        code == "InvalidRequestException" and "attached" in str(error)
    )


class StillAttachedError(RuntimeError):
    """A detached principal still attached once DETACH_WAITS_S have passed."""


def _once_detached(call: Callable[[], Any], what: str, attached: Callable[[], list[str]]) -> Any:
    """`_ignore_missing(call)`, retried after each of DETACH_WAITS_S while AWS still counts a detached
    principal as attached; then StillAttachedError naming what `what` is still attached to."""
    for wait in DETACH_WAITS_S:
        try:
            return _ignore_missing(call)
        except Exception as error:
            if not _still_attached(error):
                raise
        time.sleep(wait)
    try:
        return _ignore_missing(call)
    except Exception as error:
        if not _still_attached(error):
            raise
        holding = ", ".join(attached()) or "what AWS no longer lists"
        raise StillAttachedError(
            f"{what} is still attached to {holding} {sum(DETACH_WAITS_S):g} s after it was detached "
            f"(DetachThingPrincipal propagates asynchronously): {error}"
        ) from error


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
