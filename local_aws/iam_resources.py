"""What IAM sees of one sandbox request: the action, the ARNs of the resources it touches, context keys,
and the roles it passes (iam:PassRole).

ARN formats follow the Service Authorization Reference ("Actions, resources, and condition keys for
<service>",
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
Actions with no rule here are evaluated against resource "*" (AWS's form for actions without resource-level
permissions); documented in docs/sandbox.md section 4.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from local_aws.iam import _MOTO_TO_PREFIX, _S3_ACTIONS, _SIGNING_TO_PREFIX, Call, Principal, _body, _glob

_VERBS = ("Create", "Describe", "Delete", "Stop", "Update", "Start", "Get", "Put", "Register", "Deregister")


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _tags(params: dict[str, Any], *names: str) -> dict[str, str]:
    for name in names:
        tags = params.get(name)
        if isinstance(tags, list):
            return {t.get("Key", t.get("key")): t.get("Value", t.get("value", "")) for t in tags}
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
    return {}


def _request_tag_context(tags: dict[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        context["aws:TagKeys"] = list(tags)
    return context


def _role_arn(account: str, value: str | None) -> str | None:
    if not value:
        return None
    return value if value.startswith("arn:") else f"arn:aws:iam::{account}:role/{value}"


def _profile_roles(account: str, value: str | None) -> list[str]:
    """The roles of an instance profile (name or ARN); a profile the sandbox lacks stands for the role
    of the same name."""
    if not value:
        return []
    from local_aws.iam import _iam_backend

    name = value.rsplit("/", 1)[-1]
    for profile in _iam_backend(account).instance_profiles.values():
        if profile.name == name:
            return [role.arn for role in profile.roles]
    return [f"arn:aws:iam::{account}:role/{name}"]


# --------------------------------------------------------------------------------------------- services
def _sagemaker(action: str, params: dict[str, Any], base: str, path: str) -> tuple[list[str], dict, list]:
    passes: list[tuple[str, str]] = []
    for key in ("RoleArn", "ExecutionRoleArn"):
        if params.get(key) and action.startswith("Create"):
            passes.append((params[key], "sagemaker.amazonaws.com"))
    context = _request_tag_context(_tags(params, "Tags"))
    if action in ("InvokeEndpoint", "InvokeEndpointAsync"):
        name = unquote(path.split("/endpoints/", 1)[-1].split("/", 1)[0])
        return [f"{base}:endpoint/{name.lower()}"], context, passes
    if action in ("AddTags", "DeleteTags", "ListTags"):
        return [params.get("ResourceArn", "*")], context, passes
    if action == "UpdateEndpointWeightsAndCapacities":
        return [f"{base}:endpoint/{params.get('EndpointName', '').lower()}"], context, passes
    if action in ("CreateModelPackage", "DescribeModelPackage", "UpdateModelPackage", "DeleteModelPackage"):
        # UpdateModelPackage names its package by ModelPackageArn, the others by ModelPackageName (ARN or name)
        name = params.get("ModelPackageName") or params.get("ModelPackageArn") or ""
        group = params.get("ModelPackageGroupName")
        if name.startswith("arn:"):
            return [name], context, passes
        if group:  # a versioned package: model-package/<group>/<version>
            return [f"{base}:model-package/{group.lower()}/*"], context, passes
        return [f"{base}:model-package/{name.lower()}"], context, passes
    if action.startswith("List") or action.startswith("Search"):
        return ["*"], context, passes
    for verb in _VERBS:
        if action.startswith(verb):
            noun = action[len(verb) :]
            name = params.get(f"{noun}Name")
            if isinstance(name, str) and name:
                if name.startswith("arn:"):
                    return [name], context, passes
                return [f"{base}:{_kebab(noun)}/{name.lower()}"], context, passes
    return ["*"], context, passes


def _batch_arn(base: str, kind: str, value: str | None) -> str:
    if not value:
        return "*"
    if value.startswith("arn:"):
        return value
    return f"{base}:{kind}/{value}"


def _batch(action: str, params: dict[str, Any], base: str, path: str, account: str, region: str) -> tuple:
    passes: list[tuple[str, str]] = []
    context = _request_tag_context(_tags(params, "tags"))
    if action == "CreateComputeEnvironment":
        if params.get("serviceRole"):
            passes.append((_role_arn(account, params["serviceRole"]), "batch.amazonaws.com"))
        for role in _profile_roles(account, (params.get("computeResources") or {}).get("instanceRole")):
            passes.append((role, "ec2.amazonaws.com"))
        resource = _batch_arn(base, "compute-environment", params.get("computeEnvironmentName"))
        return [resource], context, passes
    if action == "UpdateComputeEnvironment":
        if params.get("serviceRole"):
            passes.append((_role_arn(account, params["serviceRole"]), "batch.amazonaws.com"))
        return [_batch_arn(base, "compute-environment", params.get("computeEnvironment"))], context, passes
    if action == "CreateJobQueue":
        return [_batch_arn(base, "job-queue", params.get("jobQueueName"))], context, passes
    if action in ("UpdateJobQueue", "DeleteJobQueue"):
        return [_batch_arn(base, "job-queue", params.get("jobQueue"))], context, passes
    if action == "RegisterJobDefinition":
        container = params.get("containerProperties") or {}
        for key in ("jobRoleArn", "executionRoleArn"):
            if container.get(key):
                passes.append((container[key], "ecs-tasks.amazonaws.com"))
        return [_batch_arn(base, "job-definition", params.get("jobDefinitionName"))], context, passes
    if action == "SubmitJob":
        definition = params.get("jobDefinition") or ""
        if not definition.startswith("arn:") and ":" not in definition:
            definition = f"{definition}:{_latest_revision(account, region, definition)}"
        return (
            [
                _batch_arn(base, "job-queue", params.get("jobQueue")),
                _batch_arn(base, "job-definition", definition),
            ],
            context,
            passes,
        )
    if action in ("TerminateJob", "CancelJob"):
        return [f"{base}:job/{params.get('jobId', '')}"], context, passes
    if action in ("TagResource", "UntagResource", "ListTagsForResource"):
        return [unquote(path.split("/v1/tags/", 1)[-1])], context, passes
    return ["*"], context, passes


def _latest_revision(account: str, region: str, name: str) -> str:
    try:
        from moto.batch.models import batch_backends

        revisions = [
            d.revision for d in batch_backends[account][region]._job_definitions.values() if d.name == name
        ]
        return str(max(revisions)) if revisions else "*"
    except Exception:
        return "*"


def _emr(action: str, params: dict[str, Any], base: str, account: str, region: str) -> tuple:
    passes: list[tuple[str, str]] = []
    context = _request_tag_context(_tags(params, "Tags"))
    if action == "RunJobFlow":
        if params.get("ServiceRole"):
            passes.append((_role_arn(account, params["ServiceRole"]), "elasticmapreduce.amazonaws.com"))
        for role in _profile_roles(account, params.get("JobFlowRole")):
            passes.append((role, "ec2.amazonaws.com"))
        return ["*"], context, passes
    single = params.get("ClusterId") or params.get("JobFlowId")  # AddJobFlowSteps names it JobFlowId
    ids = params.get("JobFlowIds") or ([single] if single else [])
    if action == "AddTags" and params.get("ResourceId"):
        ids = [params["ResourceId"]]
    if not ids:
        return ["*"], context, passes
    try:
        from moto.emr.models import emr_backends

        clusters = emr_backends[account][region].clusters
        tags = dict(clusters[ids[0]]._tags) if ids[0] in clusters else {}
    except Exception:
        tags = {}
    context.update({f"elasticmapreduce:ResourceTag/{k}": v for k, v in tags.items()})
    context.update({f"aws:ResourceTag/{k}": v for k, v in tags.items()})
    return [f"{base}:cluster/{cid}" for cid in ids], context, passes


_IOT_PATHS = {
    "things": "thing",
    "thing-groups": "thinggroup",
    "thing-types": "thingtype",
    "policies": "policy",
    "target-policies": "policy",
    "role-aliases": "rolealias",
    "jobs": "job",
    "certificates": "cert",
    "thing-groups-for-thing": "thing",
}


def _iot(action: str, params: dict[str, Any], base: str, path: str, account: str) -> tuple:
    passes: list[tuple[str, str]] = []
    if action in ("CreateRoleAlias", "UpdateRoleAlias") and params.get("roleArn"):
        passes.append((params["roleArn"], "credentials.iot.amazonaws.com"))
    context = _request_tag_context(_tags(params, "tags"))
    if action == "AddThingToThingGroup" or action == "RemoveThingFromThingGroup":
        return (
            [
                f"{base}:thinggroup/{params.get('thingGroupName', '*')}",
                f"{base}:thing/{params.get('thingName', '*')}",
            ],
            context,
            passes,
        )
    if (
        action in ("CreateKeysAndCertificate", "DescribeEndpoint")
        or action.startswith("List")
        and action not in ("ListThingPrincipals", "ListJobExecutionsForJob", "ListAttachedPolicies")
    ):
        return ["*"], context, passes
    parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
    if action == "DescribeJobExecution" and len(parts) >= 4:  # /things/<thing>/jobs/<job>
        return [f"{base}:job/{parts[3]}", f"{base}:thing/{parts[1]}"], context, passes
    if action == "ListAttachedPolicies":  # the target is a certificate ARN or thing group ARN
        return [parts[-1]], context, passes
    if len(parts) >= 2 and parts[0] in _IOT_PATHS:
        kind = _IOT_PATHS[parts[0]]
        if parts[1].startswith("arn:"):
            return [parts[1]], context, passes
        return [f"{base}:{kind}/{parts[1]}"], context, passes
    return ["*"], context, passes


def _logs(action: str, params: dict[str, Any], base: str) -> list[str]:
    group = params.get("logGroupName") or params.get("logGroupIdentifier")
    if not group:
        return ["*"]
    if group.startswith("arn:"):
        group = group.split(":log-group:", 1)[-1].removesuffix(":*")
    stream = params.get("logStreamName")
    if stream and action in ("CreateLogStream", "PutLogEvents", "GetLogEvents", "DeleteLogStream"):
        return [f"{base}:log-group:{group}:log-stream:{stream}"]
    return [f"{base}:log-group:{group}:*"]


def _kms(action: str, params: dict[str, Any], base: str, account: str, region: str) -> tuple[list[str], dict]:
    context: dict[str, Any] = {}
    if action == "CreateKey":
        spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec")
        context["kms:KeySpec"] = spec or "SYMMETRIC_DEFAULT"
        context["kms:KeyUsage"] = params.get("KeyUsage") or "ENCRYPT_DECRYPT"
        context.update(_request_tag_context(_tags(params, "Tags")))
        return ["*"], context
    key_id = params.get("TargetKeyId") or params.get("KeyId")
    if not key_id:
        return ["*"], context
    try:
        from moto.kms.models import kms_backends

        backend = kms_backends[account][region]
        key = backend.describe_key(key_id)
        aliases = [alias.alias_name for alias in backend.list_aliases(key_id=key.id)]
        # the key's own kms:KeySpec / kms:KeyUsage, which policies may condition key operations on
        context["kms:KeySpec"] = getattr(key, "key_spec", None) or "SYMMETRIC_DEFAULT"
        context["kms:KeyUsage"] = getattr(key, "key_usage", None) or "ENCRYPT_DECRYPT"
        if aliases:
            context["kms:ResourceAliases"] = list(aliases)
        key_arn = key.arn
    except Exception:
        # No such key or alias: KMS answers NotFoundException before any key-based authorization (the key
        # policy lives on the key), so the call goes on to the service, which says so.
        return [], context
    if action == "CreateAlias":
        alias = params.get("AliasName", "")
        return [f"{base}:{alias}", key_arn], context
    return [key_arn], context


def _secret(params: dict[str, Any], base: str, account: str, region: str) -> list[str]:
    secret_id = params.get("SecretId") or params.get("Name")
    if not secret_id:
        return ["*"]
    if secret_id.startswith("arn:"):
        return [secret_id]
    try:
        from moto.secretsmanager.models import secretsmanager_backends

        secret = secretsmanager_backends[account][region].secrets.get(secret_id)
        if secret is not None:
            return [secret.arn]
    except Exception:
        pass
    return [f"{base}:secret:{secret_id}-??????"]  # AWS appends six random characters


def _sqs(params: dict[str, Any], base: str) -> list[str]:
    url = params.get("QueueUrl")
    name = params.get("QueueName") or (url.rstrip("/").rsplit("/", 1)[-1] if url else None)
    return [f"{base}:{name}"] if name else ["*"]


def _cloudwatch(action: str, params: dict[str, Any], base: str) -> tuple[list[str], dict]:
    context: dict[str, Any] = {}
    if action == "PutMetricData":
        context["cloudwatch:namespace"] = params.get("Namespace", "")
        return ["*"], context
    names = params.get("AlarmNames") or []
    if isinstance(names, str):
        names = [names]
    names += [v for k, v in params.items() if k.startswith("AlarmNames.member.")]
    if params.get("AlarmName"):
        names.append(params["AlarmName"])
    return ([f"{base}:alarm:{n}" for n in names] or ["*"]), context


_SERVICE_LINKED = {
    "sagemaker.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
}


def _iam(action: str, params: dict[str, Any], account: str) -> tuple[list[str], dict]:
    context: dict[str, Any] = {}
    if action == "CreateServiceLinkedRole":
        service = params.get("AWSServiceName", "")
        context["iam:AWSServiceName"] = service
        name = _SERVICE_LINKED.get(service, "*")
        return [f"arn:aws:iam::{account}:role/aws-service-role/{service}/{name}"], context
    if params.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    elif params.get("RoleName") and action != "CreateRole":  # the role's own boundary
        from local_aws.iam import _iam_backend

        role = next((r for r in _iam_backend(account).roles.values() if r.name == params["RoleName"]), None)
        if role is not None and role.permissions_boundary_arn:
            context["iam:PermissionsBoundary"] = role.permissions_boundary_arn
    if params.get("PolicyArn"):
        context["iam:PolicyARN"] = params["PolicyArn"]
    for key, kind in (
        ("RoleName", "role"),
        ("UserName", "user"),
        ("GroupName", "group"),
        ("InstanceProfileName", "instance-profile"),
    ):
        if params.get(key):
            path = params.get("Path", "/").lstrip("/")
            return [f"arn:aws:iam::{account}:{kind}/{path}{params[key]}"], context
    if action in ("CreatePolicy",):
        return [f"arn:aws:iam::{account}:policy/{params.get('PolicyName', '')}"], context
    if params.get("PolicyArn"):
        return [params["PolicyArn"]], context
    return ["*"], context


# ------------------------------------------------------------------------------------------------- entry
def _operation_name(response: Any, action: str) -> str:
    """The API's operation name: moto names some in lower case (Batch: 'registerjobdefinition')."""
    if action == "tags":  # Batch's /v1/tags/<arn>
        verbs = {"GET": "ListTagsForResource", "POST": "TagResource", "DELETE": "UntagResource"}
        return verbs[response.method]
    if action != action.lower():
        return action
    try:
        from moto.core.responses import get_service_model

        names = get_service_model(response.boto3_service_name).operation_names
        return next((name for name in names if name.lower() == action), action)
    except Exception:
        return action


_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def describe(response: Any, s3: str | None, signing: str, region: str, moto_resource: str) -> Call:
    """The IAM view of the request `response` (a moto BaseResponse) is serving."""
    account = response.current_account
    path = urlparse(response.uri).path
    if s3 == "s3":
        operation = response.data.get("Action") if isinstance(response.data, dict) else None
        operation = _S3_ACTIONS.get(operation or "", operation or "ListAllMyBuckets")
        if operation == "ListBucket" and moto_resource in ("arn:aws:s3:::*", "*"):
            operation = "ListAllMyBuckets"
        context: dict[str, Any] = {}
        query = parse_qs(urlparse(response.uri).query, keep_blank_values=True)
        if operation in ("ListBucket", "ListBucketVersions") and "prefix" in query:
            context["s3:prefix"] = query["prefix"][0]  # absent when the request names no prefix
            if query.get("delimiter"):
                context["s3:delimiter"] = query["delimiter"][0]
        resource = "*" if operation in ("ListAllMyBuckets",) else moto_resource
        if operation == "DeleteObjects" or response.method == "POST" and "delete" in query:
            operation = "DeleteObject"
        return Call("s3", f"s3:{operation}", [resource], context)

    prefix = _MOTO_TO_PREFIX.get(response.service_name or "") or _SIGNING_TO_PREFIX.get(signing, signing)
    action = response._get_action()
    action = _operation_name(response, action[0] if isinstance(action, list) else action)
    if prefix == "sqs":  # "You cannot set permissions explicitly for SendMessageBatch, DeleteMessageBatch, or
        # ChangeMessageVisibilityBatch": the single action's permission covers them ("Amazon SQS batch actions")
        action = _SQS_BATCH_ACTIONS.get(action, action)
    params = _body(response)
    base = f"arn:aws:{prefix}:{region}:{account}"
    backend_region = getattr(response, "region", None) or region  # where moto keeps the resources
    passes: list[tuple[str, str]] = []
    context = {}
    if prefix == "sagemaker":
        resources, context, passes = _sagemaker(action, params, base, path)
    elif prefix == "batch":
        resources, context, passes = _batch(action, params, base, path, account, backend_region)
    elif prefix == "elasticmapreduce":
        resources, context, passes = _emr(action, params, base, account, backend_region)
    elif prefix == "iot":
        resources, context, passes = _iot(action, params, base, path, account)
    elif prefix == "logs":
        resources = _logs(action, params, base)
    elif prefix == "kms":
        resources, context = _kms(action, params, base, account, backend_region)
    elif prefix == "secretsmanager":
        resources = _secret(params, base, account, backend_region)
        context = _request_tag_context(_tags(params, "Tags"))
    elif prefix == "sqs":
        resources = _sqs(params, base)
    elif prefix == "events":
        name = params.get("Name") or params.get("Rule")
        resources = [f"{base}:rule/{name}"] if name else [f"{base}:event-bus/default"]
    elif prefix == "cloudwatch":
        resources, context = _cloudwatch(action, params, base)
    elif prefix == "application-autoscaling":
        resources = ["*"]
        if params.get("ServiceNamespace"):
            context["application-autoscaling:service-namespace"] = params["ServiceNamespace"]
    elif prefix == "iam":
        resources, context = _iam(action, params, account)
    elif prefix == "sts" and action == "AssumeRole":
        resources = [params.get("RoleArn", "*")]
    else:
        resources = [moto_resource or "*"]
    passes = [(_role_arn(account, arn), service) for arn, service in passes if arn]
    return Call(prefix, f"{prefix}:{action}", resources, context, passes)


def trust_denial(principal: Principal, role_arn: str) -> str | None:
    """AssumeRole also needs the role's trust policy to name the caller (or its account)."""
    from local_aws.iam import _iam_backend, denial_message

    try:
        role = _iam_backend(principal.account_id).get_role_by_arn(role_arn)
    except Exception:
        return denial_message(principal, "sts:AssumeRole", role_arn, "because the role does not exist")
    trust = json.loads(role.assume_role_policy_document)
    as_role = principal.arn.replace(":sts::", ":iam::").replace(":assumed-role/", ":role/").rsplit("/", 1)[0]
    root = f"arn:aws:iam::{principal.account_id}:root"
    callers = {principal.arn, as_role, principal.account_id, root}
    for statement in trust.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") != "Allow" or not any(_glob(a, "sts:AssumeRole", True) for a in actions):
            continue
        principals = statement.get("Principal", {})
        aws = principals.get("AWS", []) if isinstance(principals, dict) else principals
        aws = [aws] if isinstance(aws, str) else aws
        if "*" in aws or callers & set(aws):
            return None
    return denial_message(
        principal,
        "sts:AssumeRole",
        role_arn,
        "because the role's trust policy does not allow this principal to assume it",
    )


def trusts_service(account: str, role_arn: str, service: str) -> bool:
    """Whether `role_arn` exists and its trust policy lets `service` (a service principal) assume it."""
    from local_aws.iam import _iam_backend

    try:
        role = _iam_backend(account).get_role_by_arn(role_arn)
    except Exception:
        return False
    trust = json.loads(role.assume_role_policy_document)
    for statement in trust.get("Statement", []):
        principals = statement.get("Principal", {})
        services = principals.get("Service", []) if isinstance(principals, dict) else []
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") == "Allow" and service in services:
            return True
    return False
