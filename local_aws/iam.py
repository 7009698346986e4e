"""IAM enforcement: every call made with credentials other than the sandbox's administrator key is
authorized against the caller's identity policies, the way AWS does it.

* The sandbox's own key (`testing`, what README exports and `CLIENT_ENV` names) acts as the account's
  root: everything is allowed (AWS: the root user is not limited by identity policies).
* Any other access key must belong to an IAM user (its inline + attached policies and its groups') or to an
  STS session from AssumeRole (its role's inline + attached policies, intersected with the session policy),
  else the call fails like AWS: InvalidClientTokenId / InvalidAccessKeyId, ExpiredToken.
* Evaluation follows "Policy evaluation logic"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
  an explicit Deny in any policy wins, then an Allow is needed, otherwise the implicit deny; a permissions
  boundary (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html) and a session
  policy must allow the call too. Action/NotAction, Resource/NotResource with `*`/`?` wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  .../reference_policies_elements_resource.html); Condition operators String*, Arn*, Bool, Null with
  ForAnyValue:/ForAllValues: and ...IfExists
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
  An operator this module does not implement DENIES the call (fail closed), whatever the statement's Effect.
* The resource of a call is the real ARN for the actions orchard uses (`_resources`); an action this module
  has no ARN rule for is evaluated against resource `*` (the form AWS uses for actions without
  resource-level permissions), which a policy scoped to specific ARNs does not match: it fails closed too.
* Creating a job/model/cluster/role alias that names a role checks `iam:PassRole` on that role with the
  context key `iam:PassedToService` ("Granting a user permissions to pass a role to an AWS service",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
* AssumeRole also needs the role's trust policy to allow the caller.

Denials answer with AWS's message, "User: <arn> is not authorized to perform: <action> on resource: <arn>
because no identity-based policy allows the <action> action", in the protocol's error shape
(AccessDeniedException for JSON services, AccessDenied for query/XML services and S3; HTTP 403).

What still differs: signatures are not verified (any secret works for a known key id); resource-based
policies (bucket policies, KMS key policies, SQS queue policies) are not evaluated; SCPs are not modelled.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.core.utils import utcnow

from local_aws import CLIENT_ENV

ADMIN_ACCESS_KEY_IDS = frozenset({CLIENT_ENV["AWS_ACCESS_KEY_ID"]})
INVALID_TOKEN = "The security token included in the request is invalid."

_local = threading.local()


# ----------------------------------------------------------------------------------------------- errors
class _JsonAccessDenied(JsonRESTError):
    code = 403


class _XmlAccessDenied(_RESTError):
    code = 403


class _S3AccessDenied(_RESTError):
    """S3's error document: <Error><Code/><Message/><RequestId/></Error>."""

    code = 403
    include_type_sender = False

    def __init__(self, error_type: str, message: str):
        super().__init__(error_type, message)
        from xml.sax.saxutils import escape

        self.description = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(error_type)}</Code><Message>{escape(message)}</Message>"
            "<RequestId>sandbox</RequestId></Error>"
        )


def _error(service: str, json_protocol: bool, code: str, message: str) -> Exception:
    if service == "s3":
        return _S3AccessDenied(code, message)
    if json_protocol:
        return _JsonAccessDenied(code + ("Exception" if code == "AccessDenied" else ""), message)
    return _XmlAccessDenied(code, message)


# ------------------------------------------------------------------------------------------ principals
@dataclass
class Principal:
    """Who signed a request: an IAM user or an assumed-role session, with what their policies say."""

    arn: str
    account_id: str
    kind: str  # "user" | "assumed-role"
    policies: list[dict[str, Any]]
    boundary: dict[str, Any] | None = None
    session_policy: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    name: str = ""
    context: dict[str, str] = field(default_factory=dict)  # the principal's own context keys


def _document(policy: Any) -> dict[str, Any]:
    from moto.iam.models import Policy

    if isinstance(policy, Policy):
        version = next(v for v in policy.versions if v.is_default)
        text = version.document
    elif isinstance(policy, dict):
        return policy.get("policy_document") and json.loads(policy["policy_document"]) or policy
    else:
        text = policy
    return json.loads(unquote(text) if isinstance(text, str) and text.startswith("%") else text)


def _managed(backend: Any, arn: str | None) -> dict[str, Any] | None:
    if not arn:
        return None
    policy = backend.managed_policies.get(arn)
    if policy is None:
        raise _Deny(f"the permissions boundary {arn} does not exist")
    return _document(policy)


def _iam_backend(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["aws"]


def _user_principal(account_id: str, key_id: str) -> Principal | None:
    backend = _iam_backend(account_id)
    for user in backend.users.values():
        if any(k.access_key_id == key_id and k.status == "Active" for k in user.access_keys):
            policies = [_document(p) for p in user.policies.values()]
            policies += [_document(p) for p in user.managed_policies.values()]
            for group in backend.get_groups_for_user(user.name):
                policies += [_document(p) for p in group.policies.values()]
                policies += [_document(p) for p in group.managed_policies.values()]
            return Principal(
                arn=user.arn,
                account_id=account_id,
                kind="user",
                policies=policies,
                boundary=_managed(backend, getattr(user, "permissions_boundary_arn", None)),
                tags={t["Key"]: t["Value"] for t in (user.tags or {}).values()}
                if isinstance(user.tags, dict)
                else {},
                name=user.name,
                context={"aws:username": user.name, "aws:userid": user.id},
            )
    return None


def _role_policies(backend: Any, role: Any) -> list[dict[str, Any]]:
    policies = [_document(p) for p in role.policies.values()]
    policies += [_document(p) for p in role.managed_policies.values()]
    return policies


def _session_principal(account_id: str, key_id: str, token: str | None) -> Principal | None:
    from moto.sts.models import sts_backends

    for session in sts_backends[account_id]["aws"].assumed_roles:
        if session.access_key_id != key_id:
            continue
        if token != session.session_token:
            raise _ClientError("InvalidClientTokenId", INVALID_TOKEN)
        if session.expiration < utcnow():
            raise _ClientError("ExpiredToken", "The security token included in the request is expired")
        backend = _iam_backend(account_id)
        try:
            role = backend.get_role_by_arn(session.role_arn)
        except Exception:  # the role was deleted: its sessions stop working (AWS: AccessDenied on every call)
            return Principal(arn=session.role_arn, account_id=account_id, kind="assumed-role", policies=[])
        return Principal(
            arn=f"arn:aws:sts::{account_id}:assumed-role/{role.name}/{session.session_name}",
            account_id=account_id,
            kind="assumed-role",
            policies=_role_policies(backend, role),
            boundary=_managed(backend, role.permissions_boundary_arn),
            session_policy=json.loads(session.policy) if session.policy else None,
            name=role.name,
            context=_session_context(account_id, session.role_arn, session.session_name),
        )
    return None


def _session_context(account_id: str, role_arn: str, session_name: str) -> dict[str, str]:
    """A session of a role that trusts the IoT credentials provider is a device's: the provider names the
    session after the thing and sets credentials-iot:ThingName (https://docs.aws.amazon.com/iot/latest/
    developerguide/authorizing-direct-aws.html); the sandbox's provider (local_aws/iot.py) does the same."""
    from local_aws import iam_resources

    if iam_resources.trusts_service(account_id, role_arn, "credentials.iot.amazonaws.com"):
        return {"credentials-iot:ThingName": session_name}
    return {}


class _ClientError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Deny(Exception):
    """A condition this module cannot evaluate: the request is denied (fail closed)."""


def principal_for(account_id: str, key_id: str, token: str | None) -> Principal | None:
    """None for the administrator key; the user or session otherwise (raises _ClientError if unknown)."""
    if key_id in ADMIN_ACCESS_KEY_IDS:
        return None
    found = _user_principal(account_id, key_id) or _session_principal(account_id, key_id, token)
    if found is None:
        raise _ClientError("InvalidClientTokenId", INVALID_TOKEN)
    return found


def current_principal() -> Principal | None:
    """The principal of the request this thread is serving (None: the administrator or the sandbox)."""
    return getattr(_local, "principal", None)


# ------------------------------------------------------------------------------------------ evaluation
def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_STRING_OPS = {
    "stringequals": (lambda p, v: p == v, False),
    "stringnotequals": (lambda p, v: p == v, True),
    "stringequalsignorecase": (lambda p, v: p.lower() == v.lower(), False),
    "stringnotequalsignorecase": (lambda p, v: p.lower() == v.lower(), True),
    "stringlike": (lambda p, v: _glob(p, v), False),
    "stringnotlike": (lambda p, v: _glob(p, v), True),
    "arnequals": (lambda p, v: _glob(p, v), False),
    "arnlike": (lambda p, v: _glob(p, v), False),
    "arnnotequals": (lambda p, v: _glob(p, v), True),
    "arnnotlike": (lambda p, v: _glob(p, v), True),
    "bool": (lambda p, v: p.lower() == v.lower(), False),
}


def _condition_met(operator: str, key: str, policy_values: Any, context: dict[str, Any]) -> bool:
    op = operator
    quantifier = ""
    if ":" in op:
        quantifier, op = op.split(":", 1)
        quantifier = quantifier.lower()
        if quantifier not in ("foranyvalue", "forallvalues"):
            raise _Deny(f"unknown condition set operator {operator!r}")
    if_exists = op.lower().endswith("ifexists")
    if if_exists:
        op = op[: -len("IfExists")]
    op = op.lower()
    wanted = [_substitute(str(v), context) if "${" in str(v) else str(v) for v in _as_list(policy_values)]
    wanted = [v for v in wanted if v is not None]
    present = key.lower() in context
    raw = context.get(key.lower())
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(raw)] if present else []
    if op == "null":
        return (not present) == (wanted[0].lower() == "true")
    if op not in _STRING_OPS:
        raise _Deny(f"condition operator {operator!r} is not implemented by the sandbox")
    match, negated = _STRING_OPS[op]
    if not present:
        if quantifier == "forallvalues":
            return True
        return if_exists or (negated and quantifier != "foranyvalue")

    def one(value: str) -> bool:
        hit = any(match(p, value) for p in wanted)
        return not hit if negated else hit

    if quantifier == "forallvalues":
        return all(one(v) for v in values)
    if quantifier == "foranyvalue" or not negated:
        return any(one(v) for v in values)
    return all(one(v) for v in values)


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(pattern: str, context: dict[str, Any]) -> str | None:
    """Policy variables (${aws:username}, ${credentials-iot:ThingName}, ...) replaced by the request's values;
    None when one has no value (the element then matches nothing)
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html)."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        if "," in name:  # ${key, 'default'}
            name, default = name.split(",", 1)
            found = context.get(name.strip().lower())
            return str(found) if found is not None else default.strip().strip("'")
        found = context.get(name.lower())
        if found is None or isinstance(found, list):
            missing = True
            return ""
        return str(found)

    result = _VARIABLE.sub(value, pattern)
    return None if missing else result


def _matches_any(patterns: Any, value: str, context: dict[str, Any]) -> bool:
    for pattern in _as_list(patterns):
        pattern = _substitute(pattern, context) if "${" in pattern else pattern
        if pattern is not None and _glob(pattern, value):
            return True
    return False


def _statement_applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, Any]
) -> bool:
    if "Action" in statement:
        if not any(_glob(a, action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(a, action, ignore_case=True) for a in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not _matches_any(statement["Resource"], resource, context):
            return False
    elif "NotResource" in statement:
        if _matches_any(statement["NotResource"], resource, context):
            return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, values in pairs.items():
            if not _condition_met(operator, key, values, context):
                return False
    return True


def _decide(documents: Iterable[dict[str, Any]], action: str, resource: str, context: dict[str, Any]) -> str:
    """'deny' (an explicit Deny applies), 'allow' or 'implicit'."""
    allowed = False
    for document in documents:
        for statement in _as_list(document.get("Statement", [])):
            if _statement_applies(statement, action, resource, context):
                if statement.get("Effect") == "Deny":
                    return "deny"
                if statement.get("Effect") == "Allow":
                    allowed = True
    return "allow" if allowed else "implicit"


def evaluate(principal: Principal, action: str, resource: str, context: dict[str, Any]) -> str | None:
    """None if allowed, else the reason AWS's message ends with."""
    context = {k.lower(): v for k, v in context.items()}
    context.setdefault("aws:principalarn", principal.arn)
    context.setdefault("aws:principalaccount", principal.account_id)
    context.update({k.lower(): v for k, v in principal.context.items()})
    try:
        decision = _decide(principal.policies, action, resource, context)
        if decision == "deny":
            return "with an explicit deny in an identity-based policy"
        if decision == "implicit":
            return f"because no identity-based policy allows the {action} action"
        if principal.boundary is not None:
            decision = _decide([principal.boundary], action, resource, context)
            if decision == "deny":
                return "with an explicit deny in a permissions boundary"
            if decision == "implicit":
                return f"because no permissions boundary allows the {action} action"
        if principal.session_policy is not None:
            decision = _decide([principal.session_policy], action, resource, context)
            if decision != "allow":
                return f"because no session policy allows the {action} action"
    except _Deny as unsupported:
        return f"because {unsupported} (the sandbox denies what it cannot evaluate)"
    return None


def denial_message(principal: Principal, action: str, resource: str, reason: str) -> str:
    return f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} {reason}"


# ------------------------------------------------------------------------------- request → IAM request
_SIGNING_TO_PREFIX = {
    "iotdata": "iot",
    "iot-data": "iot",
    "execute-api": "execute-api",
    "monitoring": "cloudwatch",
    "email": "ses",
    "runtime.sagemaker": "sagemaker",
}
_MOTO_TO_PREFIX = {
    "emr": "elasticmapreduce",
    "applicationautoscaling": "application-autoscaling",
    "iot-data": "iot",
    "sagemaker-runtime": "sagemaker",
    "sagemakerruntime": "sagemaker",
    "cloudwatch": "cloudwatch",
    "logs": "logs",
    "ec2": "ec2",
}
# S3 operation (moto's name) → IAM action, where they differ
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
_S3_ACTIONS = {
    "HeadBucket": "ListBucket",
    "GetBucketCORS": "GetBucketCORS",
    "ListBucketMultipartUploads": "ListBucketMultipartUploads",
    "ListMultipartUploadParts": "ListMultipartUploadParts",
    "GetLifecycleConfiguration": "GetLifecycleConfiguration",
}


def _credential(headers: Any, uri: str) -> tuple[str, str, str, str | None] | None:
    """(access key id, region, signing service, session token) of a SigV4 request, None if unsigned."""
    auth = headers.get("Authorization") or ""
    match = re.search(r"Credential=([^,\s]+)", auth)
    token = headers.get("X-Amz-Security-Token")
    if match:
        scope = match.group(1)
    else:
        query = parse_qs(urlparse(uri).query)
        if "X-Amz-Credential" not in query:
            return None
        scope = query["X-Amz-Credential"][0]
        token = token or (query.get("X-Amz-Security-Token") or [None])[0]
    parts = scope.split("/")
    if len(parts) < 4:
        return None
    return parts[0], parts[2], parts[3], token


def _body(response: Any) -> dict[str, Any]:
    body = getattr(response, "body", None) or getattr(response, "raw_body", None) or b""
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError:
            return {}
    if body and body.lstrip().startswith("{"):
        try:
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    querystring = getattr(response, "querystring", None) or {}
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in querystring.items()}


@dataclass
class Call:
    """One API call as IAM sees it: action, the resources it touches, the request's context keys."""

    service: str
    action: str
    resources: list[str]
    context: dict[str, Any]
    passes: list[tuple[str, str]] = field(default_factory=list)  # (role ARN, service principal)


def authorize_call(principal: Principal | None, call: Call) -> str | None:
    """None if `principal` may make `call` (PassRole included), else AWS's denial message."""
    if principal is None:
        return None
    for resource in call.resources:
        reason = evaluate(principal, call.action, resource, call.context)
        if reason:
            return denial_message(principal, call.action, resource, reason)
    for role_arn, service in call.passes:
        context = {"iam:PassedToService": service}
        reason = evaluate(principal, "iam:PassRole", role_arn, context)
        if reason:
            return denial_message(principal, "iam:PassRole", role_arn, reason)
    return None


def _authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """Replaces moto's ActionAuthenticatorMixin._authenticate_and_authorize_action: runs on every call."""
    _local.principal = None
    if not _served_by_the_sandbox():  # moto in-process (mock_aws) in the same process: moto's own behaviour
        return _moto_authorize(self, iam_request_cls, resource)
    headers = self.headers
    if headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    service = "s3" if iam_request_cls.__name__ == "S3IAMRequest" else None
    json_protocol = "json" in (headers.get("Content-Type") or "") or _rest_json(self)
    credential = _credential(headers, self.uri)
    if credential is None:
        # Anonymous calls: AWS allows them only where a resource policy makes something public, which
        # the sandbox does not model: denied.
        raise _error(
            service or "",
            json_protocol,
            "AccessDenied",
            "Anonymous requests are not allowed: sign the request with an access key",
        )
    key_id, region, signing, token = credential
    try:
        principal = principal_for(self.current_account, key_id, token)
    except _ClientError as failure:
        code = failure.code
        if service == "s3" and code == "InvalidClientTokenId":
            code = "InvalidAccessKeyId"
            failure.message = "The AWS Access Key Id you provided does not exist in our records."
        raise _error(service or "", json_protocol, code, failure.message) from None
    _local.principal = principal
    if principal is None:
        return
    from local_aws import iam_resources

    call = iam_resources.describe(self, service, signing, region, resource)
    if call.action == "sts:GetCallerIdentity":
        return
    message = authorize_call(principal, call)
    if message is None and call.action == "sts:AssumeRole":
        message = iam_resources.trust_denial(principal, call.resources[0])
    if message:
        raise _error(service or call.service, json_protocol, "AccessDenied", message)


def _rest_json(response: Any) -> bool:
    try:
        from moto.core.responses import get_service_model

        return get_service_model(response.boto3_service_name).protocol in ("json", "rest-json")
    except Exception:
        return False


class JobRoleError(RuntimeError):
    """A job's role cannot be assumed by its service: the job fails with this message."""


def role_session_env(region: str, role_arn: str, service: str) -> dict[str, str]:
    """Credentials of a fresh session of `role_arn`, assumed by `service` the way AWS services do
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-service.html): the role must
    exist and its trust policy must allow the service principal."""
    from moto.sts.models import sts_backends

    from local_aws import iam_resources

    match = re.fullmatch(r"arn:aws:iam::(\d{12}):role/(?:.*/)?([^/]+)", role_arn)
    if match is None:
        raise JobRoleError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    account = match.group(1)
    if not iam_resources.trusts_service(account, role_arn, service):
        raise JobRoleError(
            f"{service} could not assume role {role_arn}: it does not exist in the sandbox or its trust "
            f"policy does not allow the service principal {service} (create it with that trust policy, e.g. "
            "local_aws.iam_setup.create_pipeline_roles)"
        )
    role = _iam_backend(account).get_role_by_arn(role_arn)
    session = sts_backends[account]["aws"].assume_role(
        region_name=region,
        role_session_name=service.split(".")[0][:64],
        role_arn=role_arn,
        policy="",
        duration=int(role.max_session_duration or 3600),
        external_id="",
    )
    return {
        "AWS_ACCESS_KEY_ID": session.access_key_id,
        "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
        "AWS_SESSION_TOKEN": session.session_token,
    }


def _served_by_the_sandbox() -> bool:
    """Whether this call came over HTTP to the sandbox's server (a Flask request), not through mock_aws."""
    try:
        from flask import has_request_context

        return has_request_context()
    except ImportError:
        return False


_moto_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action
_installed = False


def install() -> None:
    """Enforce IAM on every call from now on (replaces moto's INITIAL_NO_AUTH_ACTION_COUNT switch)."""
    global _installed
    if _installed:
        return
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize
    _installed = True
