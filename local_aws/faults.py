"""Fault injection at the sandbox's API front: throttling, 5xx and latency, in each service's own error shape.

`ORCHARD_SANDBOX_FAULTS` (JSON) turns it on when the sandbox starts; `PUT /_orchard/faults` (same JSON)
changes it at run time, `DELETE /_orchard/faults` goes back to the variable's value, `GET /_orchard/faults`
answers the active configuration and what was injected so far (a sandbox-only route, like `/moto-api`):

    {"seed": 7, "rules": [{"service": ["batch", "emr"], "throttle": 0.3},
                          {"service": "sagemaker", "operation": "CreateEndpoint", "server_error": 1.0},
                          {"service": "*", "latency_ms": 50}]}

`{"seed": 7, "throttle": 0.3}` is short for one rule on every service. A request takes the FIRST rule whose
`service` (botocore's service name: sagemaker, sagemaker-runtime, batch, emr, iot, s3, sqs, logs, events, kms,
secretsmanager, application-autoscaling, cloudwatch, iam, sts, ...) and `operation` (the API's operation name,
e.g. SubmitJob) match; `*` matches any. Per matched request: wait `latency_ms`, then answer the service's
throttling error with probability `throttle`, else a 5xx with probability `server_error`, else serve it.
Deterministic: the n-th request for a (service, operation) gets the same fate for the same seed (the order
of concurrent requests for one operation is the only thing left to chance).

Who is faulted: the API's users — Airflow, the test harness's pipeline roles, anyone with an IAM user or an
assumed-role session from `sts:AssumeRole`. Never the sandbox's own work: requests signed with the
administrator key (the sandbox's service work, test setup and inventories; `"include_admin": true` changes
that), the sessions the sandbox hands to the jobs it runs (training, processing, Batch, EMR nodes, endpoint
models, Neo) and to simulated devices (IoT credentials provider), and unsigned requests.

Error shapes, per the protocol the request used (botocore reads the code from each):
  * awsJson (X-Amz-Target; SageMaker, EMR, Logs, EventBridge, KMS, Secrets Manager, Application Auto Scaling,
    SQS): HTTP 400, `x-amzn-ErrorType` header and `{"__type", "message"}` body; SQS (awsQueryCompatible) also
    `x-amzn-query-error: <code>;Sender` ("Interpreting Amazon SQS JSON API responses",
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html).
  * rest-json (Batch, IoT, SageMaker Runtime): same header and body.
  * smithy-rpc-v2-cbor (CloudWatch with a recent SDK): the same map in CBOR, `smithy-protocol: rpc-v2-cbor`.
  * query (IAM, STS, CloudWatch with an older SDK): `<ErrorResponse><Error><Type>Sender</Type><Code>...`;
    EC2: `<Response><Errors><Error>...` with `RequestLimitExceeded` 503
    ("Error codes for the Amazon EC2 API",
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
  * S3: `<Error><Code>SlowDown</Code>` HTTP 503 ("Amazon S3 error best practices",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorBestPractices.html; "Error responses",
    https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
Throttling codes: the service model's own throttling error where it declares one (IoT ThrottlingException,
SQS RequestThrottled: "SQS / Client / exceptions / RequestThrottled",
https://docs.aws.amazon.com/botocore/latest/reference/services/sqs/client/exceptions/RequestThrottled.html),
else the common error every JSON service answers, `ThrottlingException` 400, and `Throttling` 400 for query
services ("Common Errors", e.g. https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html,
https://docs.aws.amazon.com/batch/latest/APIReference/CommonErrors.html,
https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html). 5xx: `ServiceUnavailable` 503 (the
same Common Errors pages), S3 `InternalError` 500.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

FAULTS_VARIABLE = "ORCHARD_SANDBOX_FAULTS"
ADMIN_PATH = "/_orchard/faults"

_SIGNING_TO_SERVICE = {"elasticmapreduce": "emr", "monitoring": "cloudwatch", "iotdata": "iot-data"}
_FIX = (
    f"set {FAULTS_VARIABLE} to JSON such as "
    '{"seed": 1, "rules": [{"service": "sagemaker", "operation": "*", "throttle": 0.3}]} '
    "(docs/sandbox.md)"
)


class FaultConfigError(ValueError):
    """A fault configuration the sandbox cannot use; the message names the problem and the fix."""


@dataclass(frozen=True)
class Rule:
    services: tuple[str, ...] = ("*",)
    operations: tuple[str, ...] = ("*",)
    throttle: float = 0.0
    server_error: float = 0.0
    latency_ms: float = 0.0

    def matches(self, service: str, operation: str) -> bool:
        return ("*" in self.services or service in self.services) and (
            "*" in self.operations or operation in self.operations
        )


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    rules: tuple[Rule, ...] = ()
    include_admin: bool = False

    def rule_for(self, service: str, operation: str) -> Rule | None:
        return next((r for r in self.rules if r.matches(service, operation)), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "include_admin": self.include_admin,
            "rules": [
                {**asdict(r), "services": list(r.services), "operations": list(r.operations)}
                for r in self.rules
            ],
        }


_RULE_KEYS = {"service", "services", "operation", "operations", "throttle", "server_error", "latency_ms"}


def _names(value: Any, what: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise FaultConfigError(f"{FAULTS_VARIABLE}: {what} must be a name or a list of names, not {value!r}")
    return tuple(names)


def _share(raw: dict[str, Any], key: str) -> float:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultConfigError(f"{FAULTS_VARIABLE}: {key} is a share of calls between 0 and 1, not {value!r}")
    return float(value)


def _rule(raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"{FAULTS_VARIABLE}: each rule is a JSON object, not {raw!r}; {_FIX}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise FaultConfigError(
            f"{FAULTS_VARIABLE}: unknown rule key(s) {sorted(unknown)}; a rule has {sorted(_RULE_KEYS)}"
        )
    latency = raw.get("latency_ms", 0)
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        raise FaultConfigError(f"{FAULTS_VARIABLE}: latency_ms must be a number ≥ 0, not {latency!r}")
    return Rule(
        services=_names(raw.get("services", raw.get("service", "*")), "service"),
        operations=_names(raw.get("operations", raw.get("operation", "*")), "operation"),
        throttle=_share(raw, "throttle"),
        server_error=_share(raw, "server_error"),
        latency_ms=float(latency),
    )


def parse(text: str | dict[str, Any] | None) -> FaultConfig | None:
    """The configuration `text` (JSON) describes; None when empty (no faults)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise FaultConfigError(f"{FAULTS_VARIABLE} is not JSON ({error}); {_FIX}") from None
    else:
        raw = text
    if not isinstance(raw, dict):
        raise FaultConfigError(f"{FAULTS_VARIABLE} must be a JSON object; {_FIX}")
    top = {
        k: raw[k]
        for k in ("throttle", "server_error", "latency_ms", "service", "services", "operation", "operations")
        if k in raw
    }
    unknown = set(raw) - set(top) - {"seed", "rules", "include_admin"}
    if unknown:
        raise FaultConfigError(f"{FAULTS_VARIABLE}: unknown key(s) {sorted(unknown)}; {_FIX}")
    if top and "rules" in raw:
        raise FaultConfigError(f"{FAULTS_VARIABLE}: give either top-level {sorted(top)} or rules, not both")
    rules_raw = [top] if top else raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise FaultConfigError(f"{FAULTS_VARIABLE}: rules must be a list; {_FIX}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise FaultConfigError(f"{FAULTS_VARIABLE}: seed must be an integer, not {seed!r}")
    return FaultConfig(
        seed=seed,
        rules=tuple(_rule(r) for r in rules_raw),
        include_admin=bool(raw.get("include_admin", False)),
    )


# ---------------------------------------------------------------------------------------------- state
@dataclass
class _State:
    override: FaultConfig | None = None
    overridden: bool = False
    seen: Counter = field(default_factory=Counter)  # (service, operation) -> requests that matched a rule
    injected: Counter = field(default_factory=Counter)  # (service, operation, kind) -> faults answered
    lock: threading.Lock = field(default_factory=threading.Lock)


_state = _State()
_job_keys: set[str] = set()  # access keys of the sessions the sandbox gave to its jobs


@lru_cache(maxsize=8)
def _from_environment(raw: str) -> FaultConfig | None:
    return parse(raw)


def active() -> FaultConfig | None:
    if _state.overridden:
        return _state.override
    return _from_environment(os.environ.get(FAULTS_VARIABLE, ""))


def configure(config: FaultConfig | None) -> None:
    """Replace the active configuration (None: no faults) and start counting afresh."""
    with _state.lock:
        _state.override, _state.overridden = config, True
        _state.seen.clear()
        _state.injected.clear()


def reset_to_environment() -> None:
    with _state.lock:
        _state.override, _state.overridden = None, False
        _state.seen.clear()
        _state.injected.clear()


def report() -> dict[str, Any]:
    config = active()
    with _state.lock:
        return {
            "config": config.as_json() if config else None,
            "source": "admin route" if _state.overridden else FAULTS_VARIABLE,
            "seen": [{"service": s, "operation": o, "count": n} for (s, o), n in sorted(_state.seen.items())],
            "injected": [
                {"service": s, "operation": o, "kind": k, "count": n}
                for (s, o, k), n in sorted(_state.injected.items())
            ],
        }


def _chance(seed: int, service: str, operation: str, n: int, kind: str) -> float:
    digest = hashlib.sha256(f"{seed}|{service}|{operation}|{n}|{kind}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# ------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class _Request:
    service: str
    operation: str
    protocol: str  # json | rest-json | rest-xml | query | ec2 | cbor
    key_id: str


def _credential(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(access key id, signing name) of a SigV4 header-signed request."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    return (match.group(1), match.group(2)) if match else None


def _form_action(environ: dict[str, Any]) -> str | None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    body = environ["wsgi.input"].read(size) if size else b""
    environ["wsgi.input"] = io.BytesIO(body)  # the service reads it again
    return (parse_qs(body.decode("utf-8", "replace")).get("Action") or [None])[0]


@lru_cache(maxsize=64)
def _model(service: str) -> Any:
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(service)
    except Exception:
        return None


@lru_cache(maxsize=64)
def _rest_routes(
    service: str,
) -> tuple[tuple[str, re.Pattern[str], tuple[str, ...], tuple[str, ...], int, str], ...]:
    """(method, path pattern, query keys, WSGI header keys, weight, operation) of each REST operation. Several
    share a method and path (S3's PutObject, CopyObject, UploadPart, UploadPartCopy: PUT /{Bucket}/{Key+}):
    the members the model marks required in the query string or a header (CopyObject's x-amz-copy-source,
    UploadPart's partNumber and uploadId) tell them apart, as they do for the service ("CopyObject",
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html; "UploadPart",
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html)."""
    model = _model(service)
    if model is None:
        return ()
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        http = operation.http
        path, _, query = http.get("requestUri", "/").partition("?")
        pattern = re.sub(r"\\{[^}]+\\\+\\}", ".+", re.escape(path))  # {Key+}: one or more segments
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", pattern)
        keys = {k.split("=")[0] for k in query.split("&") if k} | set(_required_in(operation, "querystring"))
        headers = tuple(_wsgi_header(h) for h in _required_in(operation, "header"))
        literal = len(re.sub(r"\{[^}]+\}", "", path))
        weight = literal + 100 * (len(keys) + len(headers))
        method = http.get("method", "POST")
        routes.append((method, re.compile(f"^{pattern}/?$"), tuple(sorted(keys)), headers, weight, name))
    return tuple(routes)


def _required_in(operation: Any, location: str) -> list[str]:
    """The wire names of the operation's required input members sent in `location` (querystring, header)."""
    shape = operation.input_shape
    if shape is None:
        return []
    located = {m: shape.members[m].serialization for m in shape.required_members}
    return [where.get("name", m) for m, where in located.items() if where.get("location") == location]


def _wsgi_header(name: str) -> str:
    """The WSGI environ key of an HTTP header (PEP 3333: Content-Type and Content-Length have no HTTP_)."""
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


def _rest_operation(service: str, environ: dict[str, Any]) -> str:
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    best = None
    for verb, pattern, keys, headers, weight, name in _rest_routes(service):
        if (
            verb == method
            and pattern.match(path)
            and all(k in query for k in keys)
            and all(h in environ for h in headers)
        ):
            if best is None or weight > best[0]:
                best = (weight, name)
    return best[1] if best else "?"


def _service(signing: str, environ: dict[str, Any]) -> str:
    if signing == "sagemaker":
        path = environ.get("PATH_INFO", "")
        if path.endswith("/invocations") or path.endswith("/async-invocations"):
            return "sagemaker-runtime"
        if path.endswith("BatchPutMetrics"):
            return "sagemaker-metrics"
    return _SIGNING_TO_SERVICE.get(signing, signing)


def _identify(environ: dict[str, Any]) -> _Request | None:
    credential = _credential(environ)
    if credential is None:
        return None
    key_id, signing = credential
    service = _service(signing, environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return _Request(service, target.rsplit(".", 1)[-1], "json", key_id)
    if environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        return _Request(service, environ.get("PATH_INFO", "").rstrip("/").rsplit("/", 1)[-1], "cbor", key_id)
    model = _model(service)
    protocol = model.protocol if model is not None else "rest-json"
    if protocol in ("query", "ec2") or service in ("cloudwatch", "sqs"):
        action = _form_action(environ)
        if action:
            return _Request(service, action, "ec2" if service == "ec2" else "query", key_id)
    if protocol not in ("rest-json", "rest-xml"):
        protocol = "rest-json"
    return _Request(service, _rest_operation(service, environ), protocol, key_id)


def _sandbox_owned(key_id: str) -> bool:
    """The administrator key, a session the sandbox gave to a job, or a device's session."""
    from local_aws import iam

    if key_id in iam.ADMIN_ACCESS_KEY_IDS or key_id in _job_keys:
        return True
    return _device_session(key_id)


def _device_session(key_id: str) -> bool:
    try:
        from moto.sts.models import sts_backends

        from local_aws import iam_resources

        for account, regions in list(sts_backends.items()):
            for session in list(regions["aws"].assumed_roles):
                if session.access_key_id == key_id:
                    return iam_resources.trusts_service(
                        account, session.role_arn, "credentials.iot.amazonaws.com"
                    )
    except Exception:
        return False
    return False


# ------------------------------------------------------------------------------------------- answers
def _throttling_error(request: _Request) -> tuple[str, int]:
    if request.service == "s3":
        return "SlowDown", 503
    if request.protocol == "ec2":
        return "RequestLimitExceeded", 503
    if request.protocol == "query":
        return ("RequestThrottled", 400) if request.service == "sqs" else ("Throttling", 400)
    model = _model(request.service)
    if model is not None:
        for name in ("ThrottlingException", "RequestThrottled", "TooManyRequestsException"):
            try:
                shape = model.shape_for(name)
            except Exception:
                continue
            return name, int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
    return "ThrottlingException", 400


def _server_error(request: _Request) -> tuple[str, int]:
    if request.service == "s3" or request.protocol == "ec2":
        return "InternalError", 500
    return "ServiceUnavailable", 503


_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "RequestLimitExceeded": "Request limit exceeded.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "The service is unavailable. Please try again later.",
}


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 24:
        return bytes([0x60 | size]) + data
    if size < 256:
        return bytes([0x78, size]) + data
    return bytes([0x79]) + size.to_bytes(2, "big") + data


def _answer(request: _Request, code: str, status: int, environ: dict[str, Any]) -> tuple[str, list, bytes]:
    message = _MESSAGES.get(code, "Rate exceeded")
    request_id = str(uuid.uuid4())
    reason = {
        400: "Bad Request",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "Error")
    headers = [("x-amzn-RequestId", request_id)]
    fault_side = "Sender" if status < 500 else "Receiver"
    if request.protocol in ("json", "rest-json", "cbor"):
        headers.append(("x-amzn-ErrorType", code))
        model = _model(request.service)
        if model is not None and model.metadata.get("awsQueryCompatible") is not None:
            headers.append(("x-amzn-query-error", f"{code};{fault_side}"))
        if request.protocol == "cbor":
            headers += [("smithy-protocol", "rpc-v2-cbor"), ("Content-Type", "application/cbor")]
            body = (
                b"\xa2"
                + _cbor_text("__type")
                + _cbor_text(code)
                + _cbor_text("message")
                + _cbor_text(message)
            )
        else:
            content_type = "application/x-amz-json-1.1" if request.protocol == "json" else "application/json"
            headers.append(("Content-Type", content_type))
            body = json.dumps({"__type": code, "message": message}).encode()
    elif request.protocol == "ec2":
        headers.append(("Content-Type", "text/xml"))
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
    elif request.protocol == "query":
        headers.append(("Content-Type", "text/xml"))
        body = (
            f"<ErrorResponse><Error><Type>{fault_side}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    else:  # rest-xml: S3
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {reason}", headers, body


def _admin(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    status = "200 OK"
    try:
        if method in ("PUT", "POST"):
            size = int(environ.get("CONTENT_LENGTH") or 0)
            configure(parse(environ["wsgi.input"].read(size).decode() if size else ""))
        elif method == "DELETE":
            reset_to_environment()
        elif method != "GET":
            raise FaultConfigError(f"{ADMIN_PATH} answers GET, PUT, POST and DELETE, not {method}")
        body = report()
    except FaultConfigError as error:
        status, body = "400 Bad Request", {"error": str(error)}
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def decide(environ: dict[str, Any]) -> tuple[str, list, bytes] | None:
    """The injected answer for this request, or None to serve it (after any injected latency)."""
    config = active()
    if config is None or not config.rules:
        return None
    request = _identify(environ)
    if request is None or (not config.include_admin and _sandbox_owned(request.key_id)):
        return None
    rule = config.rule_for(request.service, request.operation)
    if rule is None:
        return None
    with _state.lock:
        n = _state.seen[(request.service, request.operation)]
        _state.seen[(request.service, request.operation)] += 1
    if rule.latency_ms:
        time.sleep(rule.latency_ms / 1000)
    key = (config.seed, request.service, request.operation, n)
    if rule.throttle and _chance(*key, "throttle") < rule.throttle:
        kind, (code, status) = "throttle", _throttling_error(request)
    elif rule.server_error and _chance(*key, "5xx") < rule.server_error:
        kind, (code, status) = "server_error", _server_error(request)
    else:
        return None
    with _state.lock:
        _state.injected[(request.service, request.operation, kind)] += 1
    return _answer(request, code, status, environ)


def register_job_session(env: dict[str, str]) -> dict[str, str]:
    """Remember a session the sandbox gives one of its jobs: its calls are never faulted."""
    key = env.get("AWS_ACCESS_KEY_ID")
    if key:
        _job_keys.add(key)
    return env


_installed = False


def install() -> None:
    """Wrap the sandbox's WSGI front (after every other wrapper): faults before anything else runs."""
    global _installed
    active()  # a bad ORCHARD_SANDBOX_FAULTS stops the sandbox at start, with the fix
    if _installed:
        return
    from moto.server import DomainDispatcherApplication

    from local_aws import iam

    role_session_env = iam.role_session_env

    def registered(region: str, role_arn: str, service: str) -> dict[str, str]:
        return register_job_session(role_session_env(region, role_arn, service))

    iam.role_session_env = registered
    dispatch = DomainDispatcherApplication.__call__

    def faulted(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "") == ADMIN_PATH:
            return _admin(environ, start_response)
        injected = decide(environ)
        if injected is None:
            return dispatch(self, environ, start_response)
        status, headers, body = injected
        start_response(status, headers)
        return [body]

    DomainDispatcherApplication.__call__ = faulted
    _installed = True
