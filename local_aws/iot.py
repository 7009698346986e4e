"""AWS IoT as devices see it: job lifecycles, the IoT Jobs data plane and the credentials provider.

moto stores IoT jobs but treats every target as a thing (a thing group's ARN becomes a "thing" named
after the group), never moves a job or an execution, and has no device-side API. Here:

* CreateJob expands thing-group targets into one QUEUED execution per member thing (per-thing execution
  numbers); the job is IN_PROGRESS until every execution is terminal, then COMPLETED, with
  jobProcessDetails counted from the executions. A QUEUED execution never times out (as on AWS: the
  in-progress timer starts at IN_PROGRESS); abortConfig's CANCEL criteria cancel the job when met.
  CancelJob cancels the QUEUED executions (and the IN_PROGRESS ones when forced). ListJobs applies its
  status, targetSelection and thing-group filters (moto ignores them).
* The IoT Jobs data plane (`iot-jobs-data`: StartNextPendingJobExecution, UpdateJobExecution,
  DescribeJobExecution, GetPendingJobExecutions) on the same port, as moto-style handlers.
* The credentials provider, `GET /role-aliases/<alias>/credentials`: the certificate must be ACTIVE,
  attached to the thing named in `x-amzn-iot-thingname`, and carry a policy allowing
  iot:AssumeRoleWithCertificate on the alias; the answer is an STS session of the alias's role.
  Sandbox simplification: instead of a TLS client certificate, the device sends its certificate in a
  header and a signature of `<thing>|<unix time>` made with its private key (see
  include/edge_agent/credentials.py): the same proof of possession, over plain HTTP.
* DetachThingPrincipal takes effect DETACH_PROPAGATION_S after it answers, as on AWS ("This call is
  asynchronous. It might take several seconds for the detachment to propagate":
  https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html). Until then the
  principal is still attached: DeleteCertificate answers DeleteConflictException, DeleteThing
  InvalidRequestException ("still attached to one or more principals"), and ListThingPrincipals /
  ListPrincipalThings still list it (docs/sandbox.md, "DetachThingPrincipal propagates").
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import os
import threading
import time
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.iot import models as iot_models
from moto.iot import responses as iot_responses
from moto.iot.exceptions import InvalidRequestException
from moto.iot.utils import PAGINATION_MODEL
from moto.moto_server import werkzeug_app
from moto.utilities.paginator import paginate

TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "REMOVED")
JOBS_DATA_SIGNING_NAME = "iot-jobs-data"
CREDENTIALS_PATH = "/role-aliases/"
PROOF_MAX_AGE_S = 300
# Seconds a DetachThingPrincipal takes to propagate (AWS: "several seconds"); read at each call, so tests
# may monkeypatch it. ORCHARD_SANDBOX_IOT_DETACH_S sets it for a sandbox process (0: at once, moto's way).
DETACH_PROPAGATION_S = float(os.environ.get("ORCHARD_SANDBOX_IOT_DETACH_S", "2"))

_lock = threading.RLock()


def backend(account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> iot_models.IoTBackend:
    return iot_models.iot_backends[account_id][region]


# ------------------------------------------------------------------------------------ job lifecycle


def _member_things(iot: iot_models.IoTBackend, target_arn: str) -> list[iot_models.FakeThing]:
    kind, _, name = target_arn.split(":", 5)[-1].partition("/")
    if kind == "thinggroup":
        return list(iot.describe_thing_group(name).things.values())
    return [iot.describe_thing(name)]


def _create_job(original: Any) -> Any:
    def create_job(self: iot_models.IoTBackend, *args: Any, **kwargs: Any) -> Any:
        job_id = kwargs["job_id"]
        if job_id in self.jobs:
            raise iot_models.ResourceAlreadyExistsException(
                f"Job {job_id} already exists", job_id, self.jobs[job_id].job_arn
            )
        things = {t.thing_name: t for target in kwargs["targets"] for t in _member_things(self, target)}
        with _lock:
            result = original(self, *args, **kwargs)
            for key in [k for k in self.job_executions if k[0] == job_id]:
                del self.job_executions[key]  # moto's one-per-target executions
            for thing in things.values():
                execution = iot_models.FakeJobExecution(job_id, thing.arn)
                execution.execution_number = _next_execution_number(self, thing.thing_name)
                execution.version_number = 1
                execution.started_at = None
                execution.status_details_map = {}
                self.job_executions[(job_id, thing.thing_name)] = execution
            job = self.jobs[job_id]
            job.status = "IN_PROGRESS"
            job.job_process_details["processingTargets"] = sorted(things)
            refresh_job(self, job_id)
        return result

    return create_job


def _next_execution_number(iot: iot_models.IoTBackend, thing_name: str) -> int:
    numbers = [e.execution_number for (_, name), e in iot.job_executions.items() if name == thing_name]
    return max(numbers, default=0) + 1


def refresh_job(iot: iot_models.IoTBackend, job_id: str) -> None:
    """Count the job's executions into jobProcessDetails; a job whose executions all ended is COMPLETED.

    An execution IN_PROGRESS longer than timeoutConfig.inProgressTimeoutInMinutes becomes TIMED_OUT.
    """
    job = iot.jobs.get(job_id)
    if job is None:
        return
    executions = [e for (jid, _), e in iot.job_executions.items() if jid == job_id]
    timeout_minutes = (job.timeout_config or {}).get("inProgressTimeoutInMinutes")
    if timeout_minutes:
        limit = utcnow() - datetime.timedelta(minutes=float(timeout_minutes))
        for execution in executions:
            if (
                execution.status == "IN_PROGRESS"
                and execution.started_at is not None
                and execution.started_at < limit
            ):
                execution.status, execution.last_updated_at = "TIMED_OUT", utcnow()
    counts = {s: sum(1 for e in executions if e.status == s) for s in ("QUEUED", "IN_PROGRESS", *TERMINAL)}
    job.job_process_details.update(
        {
            "numberOfQueuedThings": counts["QUEUED"],
            "numberOfInProgressThings": counts["IN_PROGRESS"],
            "numberOfSucceededThings": counts["SUCCEEDED"],
            "numberOfFailedThings": counts["FAILED"],
            "numberOfRejectedThings": counts["REJECTED"],
            "numberOfCanceledThings": counts["CANCELED"],
            "numberOfTimedOutThings": counts["TIMED_OUT"],
            "numberOfRemovedThings": counts["REMOVED"],
        }
    )
    job.last_updated_at = utcnow()
    if job.status == "IN_PROGRESS" and _abort_due(job, executions):
        for execution in executions:  # AbortCriteria action CANCEL: the job is canceled, QUEUED ones too
            if execution.status == "QUEUED":
                execution.status, execution.last_updated_at = "CANCELED", utcnow()
        job.status, job.reason_code = "CANCELED", "orchard-abort-config"
        job.comment = "abortConfig: the share of failed executions reached its threshold"
        return
    if job.status == "IN_PROGRESS" and executions and all(e.status in TERMINAL for e in executions):
        job.status = "COMPLETED"
        job.completed_at = utcnow()


FAILURE_TYPES = {
    "FAILED": ("FAILED",),
    "REJECTED": ("REJECTED",),
    "TIMED_OUT": ("TIMED_OUT",),
    "ALL": ("FAILED", "REJECTED", "TIMED_OUT"),
}


def _abort_due(job: Any, executions: list) -> bool:
    """AbortConfig (https://docs.aws.amazon.com/iot/latest/apireference/API_AbortCriteria.html): once at least
    minNumberOfExecutedThings devices got the job (left QUEUED), the job is canceled when the failures of
    failureType reach thresholdPercentage of them."""
    executed = [e for e in executions if e.status != "QUEUED"]
    for criteria in (job.abort_config or {}).get("criteriaList") or []:
        minimum = int(criteria.get("minNumberOfExecutedThings", 1))
        if criteria.get("action") != "CANCEL" or len(executed) < minimum:
            continue
        failures = sum(1 for e in executed if e.status in FAILURE_TYPES.get(criteria.get("failureType"), ()))
        if executed and 100.0 * failures / len(executed) >= float(criteria.get("thresholdPercentage", 100)):
            return True
    return False


def _refreshed(original: Any) -> Any:
    """DescribeJob and the execution listings see timeouts as soon as they are due."""

    def call(self: iot_models.IoTBackend, job_id: str, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            refresh_job(self, job_id)
        return original(self, job_id, *args, **kwargs)

    return call


def _cancel_job(original: Any) -> Any:
    def cancel_job(
        self: iot_models.IoTBackend, job_id: str, reason_code: str, comment: str, force: bool
    ) -> Any:
        if job_id not in self.jobs:
            raise iot_models.ResourceNotFoundException()
        with _lock:
            job = original(self, job_id, reason_code, comment, force)
            for (jid, _), execution in self.job_executions.items():
                if jid == job_id and (
                    execution.status == "QUEUED" or (force and execution.status == "IN_PROGRESS")
                ):
                    execution.status = "CANCELED"
                    execution.last_updated_at = utcnow()
            refresh_job(self, job_id)
            job.status = "CANCELED"
        return job

    return cancel_job


# ListJobs' filters (IoT API reference, ListJobs: "status — An optional filter that lets you search for
# jobs that have the specified status", targetSelection, "thingGroupName / thingGroupId — A filter that limits
# the returned jobs to those for the specified group": https://docs.aws.amazon.com/iot/latest/apireference/
# API_ListJobs.html). moto ignores all of them and answers every job: an inventory asking for IN_PROGRESS
# jobs would see COMPLETED ones too.
JOB_STATUSES = ("IN_PROGRESS", "CANCELED", "COMPLETED", "DELETION_IN_PROGRESS", "SCHEDULED")
TARGET_SELECTIONS = ("CONTINUOUS", "SNAPSHOT")


@paginate({"_filtered_jobs": PAGINATION_MODEL["list_jobs"]})
def _filtered_jobs(
    iot: iot_models.IoTBackend, *, status: str | None, target_selection: str | None, group_arn: str | None
) -> list[Any]:
    with _lock:
        for job_id in list(iot.jobs):
            refresh_job(iot, job_id)  # a job whose executions all ended is COMPLETED before it is filtered
        return [
            job
            for job in iot.jobs.values()
            if (status is None or job.status == status)
            and (target_selection is None or job.target_selection == target_selection)
            and (group_arn is None or group_arn in job.targets)
        ]


def _thing_group_arn(iot: iot_models.IoTBackend, name: str | None, group_id: str | None) -> str | None:
    if name is None and group_id is None:
        return None
    for group in iot.thing_groups.values():
        if group.thing_group_name == (name or group.thing_group_name) and (
            group_id is None or group.thing_group_id == group_id
        ):
            return group.arn
    return ""  # no such group: no job targets it


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidRequestException(f"{name} must be one of {', '.join(allowed)}, not {value}")
    return value


def list_jobs(self: iot_responses.IoTResponse) -> ActionResult:
    iot = self.iot_backend
    jobs, next_token = _filtered_jobs(
        iot,
        status=_one_of("status", self._get_param("status"), JOB_STATUSES),
        target_selection=_one_of("targetSelection", self._get_param("targetSelection"), TARGET_SELECTIONS),
        group_arn=_thing_group_arn(iot, self._get_param("thingGroupName"), self._get_param("thingGroupId")),
        max_results=self._get_int_param("maxResults", 50),
        next_token=self._get_param("nextToken"),
    )
    return ActionResult({"jobs": [job.to_dict() for job in jobs], "nextToken": next_token})


# -------------------------------------------------------------------------------- jobs data plane


class DataPlaneError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _execution_view(
    iot: iot_models.IoTBackend, execution: iot_models.FakeJobExecution, thing: str, with_document: bool = True
) -> dict[str, Any]:
    view = {
        "jobId": execution.job_id,
        "thingName": thing,
        "status": execution.status,
        "statusDetails": dict(execution.status_details_map or {}),
        "queuedAt": _epoch(execution.queued_at),
        "lastUpdatedAt": _epoch(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.started_at is not None:
        view["startedAt"] = _epoch(execution.started_at)
    if with_document:
        view["jobDocument"] = iot.jobs[execution.job_id].document
    return view


def _epoch(value: datetime.datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=datetime.UTC).timestamp())


def start_next_pending(iot: iot_models.IoTBackend, thing: str, details: dict | None) -> dict[str, Any]:
    iot.describe_thing(thing)
    with _lock:
        mine = sorted(
            (
                (jid, e)
                for (jid, name), e in iot.job_executions.items()
                if name == thing and e.status in ("QUEUED", "IN_PROGRESS")
            ),
            key=lambda item: item[1].queued_at,
        )
        in_progress = [item for item in mine if item[1].status == "IN_PROGRESS"]
        chosen = (in_progress or mine or [None])[0]
        if chosen is None:
            return {}
        job_id, execution = chosen
        if execution.status == "QUEUED":
            execution.status, execution.started_at = "IN_PROGRESS", utcnow()
            execution.status_details_map = dict(details or {})
            execution.last_updated_at, execution.version_number = utcnow(), execution.version_number + 1
            refresh_job(iot, job_id)
        return {"execution": _execution_view(iot, execution, thing)}


def update_execution(iot: iot_models.IoTBackend, thing: str, job_id: str, body: dict) -> dict[str, Any]:
    status = body.get("status", "")
    if status not in ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "REMOVED", "CANCELED", "TIMED_OUT"):
        raise DataPlaneError(
            400, "InvalidRequestException", f"status {status!r} is not a valid job execution status"
        )
    with _lock:
        execution = iot.job_executions.get((job_id, thing))
        if execution is None:
            raise DataPlaneError(
                404, "ResourceNotFoundException", f"no execution of job {job_id} for thing {thing}"
            )
        if execution.status in TERMINAL:
            raise DataPlaneError(
                409,
                "InvalidStateTransitionException",
                f"job execution {job_id}/{thing} is already {execution.status}",
            )
        expected = body.get("expectedVersion")
        if expected is not None and int(expected) != execution.version_number:
            raise DataPlaneError(
                409, "VersionConflictException", f"expected version {expected}, is {execution.version_number}"
            )
        execution.status = status
        execution.status_details_map = {
            **(execution.status_details_map or {}),
            **(body.get("statusDetails") or {}),
        }
        execution.last_updated_at, execution.version_number = utcnow(), execution.version_number + 1
        refresh_job(iot, job_id)
        answer: dict[str, Any] = {
            "executionState": {
                "status": execution.status,
                "statusDetails": execution.status_details_map,
                "versionNumber": execution.version_number,
            }
        }
        if body.get("includeJobDocument"):
            answer["jobDocument"] = iot.jobs[job_id].document
        return answer


def describe_execution(iot: iot_models.IoTBackend, thing: str, job_id: str) -> dict[str, Any]:
    with _lock:
        if job_id == "$next":
            pending = [
                (jid, e)
                for (jid, name), e in iot.job_executions.items()
                if name == thing and e.status in ("QUEUED", "IN_PROGRESS")
            ]
            if not pending:
                raise DataPlaneError(
                    404, "ResourceNotFoundException", f"no pending job execution for thing {thing}"
                )
            job_id = min(pending, key=lambda item: item[1].queued_at)[0]
        execution = iot.job_executions.get((job_id, thing))
        if execution is None:
            raise DataPlaneError(
                404, "ResourceNotFoundException", f"no execution of job {job_id} for thing {thing}"
            )
        return {"execution": _execution_view(iot, execution, thing)}


def pending_executions(iot: iot_models.IoTBackend, thing: str) -> dict[str, Any]:
    with _lock:
        mine = [(jid, e) for (jid, name), e in iot.job_executions.items() if name == thing]

        def summary(e):
            return {
                "jobId": e.job_id,
                "queuedAt": _epoch(e.queued_at),
                "startedAt": _epoch(e.started_at),
                "lastUpdatedAt": _epoch(e.last_updated_at),
                "versionNumber": e.version_number,
                "executionNumber": e.execution_number,
            }

        return {
            "inProgressJobs": [summary(e) for _, e in mine if e.status == "IN_PROGRESS"],
            "queuedJobs": [summary(e) for _, e in mine if e.status == "QUEUED"],
        }


# ---------------------------------------------------------------------------- credentials provider


def issue_credentials(iot: iot_models.IoTBackend, alias_name: str, headers: dict[str, str]) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.sts.models import sts_backends

    thing = headers.get("x-amzn-iot-thingname", "")
    pem = base64.b64decode(headers.get("x-orchard-client-certificate", "") or b"").decode(errors="replace")
    certificate = next(
        (c for c in iot.certificates.values() if c.certificate_pem.strip() == pem.strip()), None
    )
    if certificate is None or certificate.status != "ACTIVE":
        raise DataPlaneError(
            403, "ForbiddenException", "the client certificate is not a registered ACTIVE IoT certificate"
        )
    try:
        signed_at = int(headers.get("x-orchard-signed-at", "0"))
        public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        public_key.verify(
            base64.b64decode(headers.get("x-orchard-signature", "")),
            f"{thing}|{signed_at}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception as error:
        raise DataPlaneError(
            403, "ForbiddenException", f"no proof of the certificate's private key ({error})"
        ) from error
    if abs(time.time() - signed_at) > PROOF_MAX_AGE_S:
        raise DataPlaneError(403, "ForbiddenException", "the proof of possession is stale")
    settle_detachments(iot)
    if (certificate.arn, thing) not in iot.principal_things:
        raise DataPlaneError(403, "ForbiddenException", f"certificate is not attached to thing {thing!r}")
    alias = iot.role_aliases.get(alias_name)
    if alias is None:
        raise DataPlaneError(404, "NotFoundException", f"role alias {alias_name} does not exist")
    if not _policy_allows(iot, certificate.arn, "iot:AssumeRoleWithCertificate", alias.arn, thing):
        raise DataPlaneError(
            403,
            "ForbiddenException",
            f"no policy of the certificate allows iot:AssumeRoleWithCertificate on {alias.arn}",
        )
    session = sts_backends[iot.account_id]["aws"].assume_role(
        region_name=iot.region_name,
        role_session_name=thing[:64] or "device",
        role_arn=alias.role_arn,
        policy="",
        duration=int(alias.credential_duration_seconds),
        external_id="",
    )
    return {
        "credentials": {
            "accessKeyId": session.access_key_id,
            "secretAccessKey": session.secret_access_key,
            "sessionToken": session.session_token,
            "expiration": session.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    }


def _policy_allows(
    iot: iot_models.IoTBackend, principal_arn: str, action: str, resource: str, thing: str
) -> bool:
    for target, policy_name in list(iot.principal_policies):
        if target != principal_arn:
            continue
        policy = iot.policies.get(policy_name)
        document = policy.document if policy is not None else {}
        document = json.loads(document) if isinstance(document, str) else document
        for statement in document.get("Statement", []):
            actions = _as_list(statement.get("Action"))
            resources = [
                r.replace("${iot:Connection.Thing.ThingName}", thing)
                for r in _as_list(statement.get("Resource"))
            ]
            if (
                statement.get("Effect") == "Allow"
                and any(fnmatch.fnmatch(action, a) for a in actions)
                and any(fnmatch.fnmatch(resource, r) for r in resources)
            ):
                return True
    return False


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value] if value else []


# ------------------------------------------------------------------------- detachment propagation


def _detaching(iot: iot_models.IoTBackend) -> dict[tuple[str, str], float]:
    """(principal ARN, thing name) -> when its detachment takes effect (monotonic clock). Kept on the
    backend, so moto's reset forgets it with the attachments."""
    return iot.__dict__.setdefault("orchard_detaching", {})


def settle_detachments(iot: iot_models.IoTBackend) -> None:
    """Detachments whose propagation is over take effect: the principal is no longer attached."""
    now = time.monotonic()
    with _lock:
        pending = _detaching(iot)
        for key, due in list(pending.items()):
            if due <= now:
                del pending[key]
                iot.principal_things.pop(key, None)


def _detach_after_propagation(original: Any) -> Any:
    def detach_thing_principal(self: iot_models.IoTBackend, thing_name: str, principal_arn: str) -> None:
        settle_detachments(self)
        key = (principal_arn, thing_name)
        with _lock:
            if key in _detaching(self):
                return  # already detaching: answered as the first call was, its clock kept
            if DETACH_PROPAGATION_S <= 0:
                return original(self, thing_name, principal_arn)
            self._get_principal(principal_arn)  # moto's checks: ResourceNotFound for an unknown principal,
            self.describe_thing(thing_name)  # thing, or a principal that is not attached to it
            if key not in self.principal_things:
                raise iot_models.ResourceNotFoundException()
            _detaching(self)[key] = time.monotonic() + DETACH_PROPAGATION_S

    return detach_thing_principal


def _attach_cancels_detachment(original: Any) -> Any:
    def attach_thing_principal(self: iot_models.IoTBackend, thing_name: str, principal_arn: str) -> None:
        settle_detachments(self)
        with _lock:
            _detaching(self).pop((principal_arn, thing_name), None)
            return original(self, thing_name, principal_arn)

    return attach_thing_principal


def _settled_first(original: Any) -> Any:
    """A call that reads the attachments sees the detachments that have propagated, not the others."""

    def call(self: iot_models.IoTBackend, *args: Any, **kwargs: Any) -> Any:
        settle_detachments(self)
        return original(self, *args, **kwargs)

    return call


# ------------------------------------------------------------------------------- HTTP and install


def _region_of(environ: dict[str, Any]) -> str:
    try:
        return environ["HTTP_AUTHORIZATION"].split(",")[0].split()[1].split("/")[2]
    except (KeyError, IndexError):
        return "us-east-1"


def _is_jobs_data(environ: dict[str, Any]) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return f"/{JOBS_DATA_SIGNING_NAME}/aws4_request" in auth


def make_app():
    from flask import Flask, Response, request

    app = Flask("orchard-iot-device-side")

    def answer(call, *args: Any) -> Response:
        try:
            payload, status = call(*args), 200
        except DataPlaneError as error:
            payload, status = {"message": error.message}, error.status
            return Response(
                json.dumps(payload),
                status=status,
                mimetype="application/json",
                headers={"x-amzn-ErrorType": error.code},
            )
        except iot_models.ResourceNotFoundException:
            payload, status = {"message": "resource not found"}, 404
            return Response(
                json.dumps(payload),
                status,
                mimetype="application/json",
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def iot() -> iot_models.IoTBackend:
        return backend(DEFAULT_ACCOUNT_ID, _region_of(request.environ))

    @app.route("/things/<thing>/jobs/<job_id>", methods=["PUT", "GET", "POST"])
    def job_execution(thing: str, job_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        if request.method == "PUT" and job_id == "$next":
            return answer(start_next_pending, iot(), thing, body.get("statusDetails"))
        if request.method == "POST":
            return answer(update_execution, iot(), thing, job_id, body)
        return answer(describe_execution, iot(), thing, job_id)

    @app.route("/things/<thing>/jobs", methods=["GET"])
    def pending(thing: str) -> Response:
        return answer(pending_executions, iot(), thing)

    @app.route("/role-aliases/<alias>/credentials", methods=["GET"])
    def credentials(alias: str) -> Response:
        return answer(issue_credentials, backend(), alias, {k.lower(): v for k, v in request.headers.items()})

    return app


def _route_device_side(original: Any) -> Any:
    app_holder: dict[str, Any] = {}

    def get_application(self: werkzeug_app.DomainDispatcherApplication, environ: dict[str, Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if _is_jobs_data(environ) or (path.startswith(CREDENTIALS_PATH) and path.endswith("/credentials")):
            if "app" not in app_holder:
                app_holder["app"] = make_app()
            return app_holder["app"]
        return original(self, environ)

    return get_application


def install() -> None:
    backend_class = iot_models.IoTBackend
    backend_class.create_job = _create_job(backend_class.create_job)
    backend_class.cancel_job = _cancel_job(backend_class.cancel_job)
    backend_class.describe_job = _refreshed(backend_class.describe_job)
    backend_class.list_job_executions_for_job = _refreshed(backend_class.list_job_executions_for_job)
    backend_class.detach_thing_principal = _detach_after_propagation(backend_class.detach_thing_principal)
    backend_class.attach_thing_principal = _attach_cancels_detachment(backend_class.attach_thing_principal)
    for name in ("delete_certificate", "delete_thing", "list_thing_principals", "list_principal_things"):
        setattr(backend_class, name, _settled_first(getattr(backend_class, name)))
    iot_responses.IoTResponse.list_jobs = list_jobs
    dispatcher = werkzeug_app.DomainDispatcherApplication
    dispatcher.get_application = _route_device_side(dispatcher.get_application)
