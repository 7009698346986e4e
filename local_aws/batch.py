"""AWS Batch jobs that really run: SUBMITTED → (PENDING) → RUNNABLE → STARTING → RUNNING → SUCCEEDED | FAILED.

Replaces moto's Docker-based job thread. STARTING is the image pull (the job environment is built
on first use), RUNNING is the container command, and the end state carries the exit code and
AWS's statusReason. The job's output goes, line by line, to /aws/batch/job.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from moto.batch import models as moto_batch
from moto.batch.utils import JobStatus
from moto.iam.exceptions import NotFoundException as IAMNotFoundException

from local_aws import containers, images, jobs
from local_aws.cloudwatch import BATCH_GROUP, LogStream
from local_aws.process import run_process
from local_aws.sagemaker import ERROR_LINE

log = logging.getLogger(__name__)

ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
ATTEMPT_TIMED_OUT = "Job attempt duration exceeded timeout"


class SandboxBatchJob(moto_batch.Job):
    """moto's Batch job with its `run` replaced by a real process."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._stop_signal = jobs.new_stop_signal()
        self._container_reason: str | None = None

    # The job's own thread drives the state; moto's ManagedState would advance it on describe.
    @property
    def status(self) -> str | None:  # type: ignore[override]
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    def terminate(self, reason: str) -> None:
        super().terminate(reason)
        self._stop_signal.set()

    def run(self) -> None:
        try:
            if self.depends_on:
                self.status = JobStatus.PENDING.value
                if not self._wait_for_dependencies():
                    return
            self.status = JobStatus.RUNNABLE.value
            self._run_attempts()
        except Exception as error:  # never leave a job RUNNING because the sandbox broke
            log.exception("Batch job %s failed in the sandbox", self.job_id)
            self._fail(f"sandbox error: {error}")
        finally:
            jobs.release(self._stop_signal)

    def _run_attempts(self) -> None:
        max_attempts = int((self.job_definition.retry_strategy or {}).get("attempts", 1) or 1)
        for attempt in range(1, max_attempts + 1):
            if self.stop:
                return self._fail(self.job_stopped_reason or "Job terminated")
            succeeded, reason = self._run_one_attempt()
            if succeeded:
                return self._mark_stopped(success=True)
            if attempt == max_attempts or not self._should_retry(reason):
                return self._fail(reason)
            self.job_stopped_at = datetime.now()
            self._stop_attempt()
            self.status = JobStatus.RUNNABLE.value

    def _prepare_unless_terminated(self, image: Any, log: Any) -> Any:
        """The job's container (its environment built first: AWS's image pull), or None when the job was
        terminated while STARTING. TerminateJob moves a STARTING job to FAILED ("TerminateJob", https://
        docs.aws.amazon.com/batch/latest/APIReference/API_TerminateJob.html), so a first build of minutes
        must not hold the job in STARTING: the build runs in a thread of its own and goes on into the shared
        environment cache after the job has failed."""
        built: dict[str, Any] = {}
        done = threading.Event()

        def build() -> None:
            try:
                built["container"] = containers.prepare(image, self._command(), self._environment(), log)
            except BaseException as error:  # handed to the job's thread below
                built["error"] = error
            finally:
                done.set()

        threading.Thread(target=build, name=f"batch-prepare-{self.job_id}", daemon=True).start()
        while not done.wait(0.2):
            if self._stop_signal.is_set():
                return None
        if "error" in built:
            raise built["error"]
        return built["container"]

    def _run_one_attempt(self) -> tuple[bool, str]:
        self.status = JobStatus.STARTING.value
        self.exit_code = None
        self._container_reason = None
        image_uri = self._get_container_property("image", "")
        try:
            image = images.resolve(image_uri)
        except images.UnmappedImage as error:
            self._container_reason = str(error)
            return False, str(error)
        stream = self._open_log_stream()
        try:
            container = self._prepare_unless_terminated(image, stream.write)
        except images.ImageError as error:  # unmapped image, unknown base image, unpinned Dockerfile
            self._container_reason = str(error)[:1024]
            return False, str(error)[:1024]
        if container is None:
            return False, self.job_stopped_reason or "Job terminated"
        self.job_started_at = datetime.now()
        self._start_attempt()
        root = jobs.workspace("batch", self.job_id)
        errors: list[str] = []

        def log_line(line: str) -> None:
            stream.write(line)
            if ERROR_LINE.match(line):
                errors[:] = [line.strip()]

        try:
            mounts, read_only = self._volumes(root)
            self.status = JobStatus.RUNNING.value
            outcome = run_process(
                container.argv,
                cwd=container.cwd,
                env=container.env,
                log=log_line,
                stop=self._stop_signal,
                timeout_s=self._get_attempt_duration(),
                mounts={**container.mounts, **jobs.private_mounts(root, opt_ml=False), **mounts},
                read_only=read_only,
            )
        finally:
            jobs.discard(root)
        self.exit_code = outcome.exit_code
        if outcome.stopped:
            return False, self.job_stopped_reason or "Job terminated"
        if outcome.timed_out:
            return False, ATTEMPT_TIMED_OUT
        if outcome.exit_code != 0:
            # AWS says only that the container exited; the sandbox adds the job's last exception line
            # (e.g. `ModuleNotFoundError: No module named 'x'`) so the reason names the problem.
            error = f": {errors[0]}"[:900] if errors else ""
            self._container_reason = f"exit code {outcome.exit_code}{error}"
            return False, ESSENTIAL_CONTAINER_EXITED
        return True, ""

    def _volumes(self, root: Path) -> tuple[dict[str, Path], set[str]]:
        """The job definition's mountPoints, each bound at its containerPath (AWS Batch API reference:
        MountPoint https://docs.aws.amazon.com/batch/latest/APIReference/API_MountPoint.html, Volume and
        Host https://docs.aws.amazon.com/batch/latest/APIReference/API_Host.html): a volume's
        host.sourcePath is that host folder (created if missing, as the Docker daemon does); a volume
        without one is a fresh folder of this job's own."""
        volumes = {v.get("name"): v for v in self._get_container_property("volumes", []) or []}
        mounts: dict[str, Path] = {}
        read_only: set[str] = set()
        for point in self._get_container_property("mountPoints", []) or []:
            name, target = point.get("sourceVolume"), point.get("containerPath")
            if name not in volumes:
                known = ", ".join(map(str, volumes)) or "none"
                raise ValueError(
                    f"mountPoints names sourceVolume {name!r}, which is not in volumes "
                    f"({known}): add it to containerProperties.volumes"
                )
            if not target or not str(target).startswith("/"):
                raise ValueError(f"mountPoints containerPath {target!r} must be an absolute container path")
            volume = volumes[name]
            if volume.get("efsVolumeConfiguration"):
                raise ValueError(
                    f"volume {name!r} is an EFS volume, which the local sandbox cannot mount: "
                    "use a host.sourcePath volume"
                )
            source = (volume.get("host") or {}).get("sourcePath")
            host = Path(source) if source else root / "volumes" / name
            host.mkdir(parents=True, exist_ok=True)
            mounts[target] = host
            if point.get("readOnly"):
                read_only.add(target)
        return mounts, read_only

    def _open_log_stream(self) -> LogStream:
        # AWS names the stream <job definition name>/default/<ECS task id>, new for every attempt.
        self.log_stream_name = f"{self.job_definition.name}/default/{uuid.uuid4().hex}"
        region = self.job_definition._region
        return LogStream(self.backend.account_id, region, BATCH_GROUP, self.log_stream_name)

    def _command(self) -> list[str]:
        return self._add_parameters_to_command(self._get_container_property("command", []))

    def _environment(self) -> dict[str, str]:
        env = {e["name"]: e["value"] for e in self._get_container_property("environment", [])}
        env["AWS_BATCH_JQ_NAME"] = self.job_queue.name
        env["AWS_BATCH_JOB_ATTEMPT"] = str(len(self.attempts))
        return {
            **jobs.aws_env(
                self.job_definition._region,
                self._get_container_property("jobRoleArn", None),
                "ecs-tasks.amazonaws.com",
            ),
            **env,
        }

    def _should_retry(self, reason: str) -> bool:
        """AWS semantics: the first evaluateOnExit rule that matches decides; none matching retries."""
        for rule in (self.job_definition.retry_strategy or {}).get("evaluateOnExit", []):
            if _rule_matches(rule, self.exit_code, reason, self._container_reason):
                return rule.get("action", "").upper() == "RETRY"
        return True

    def _fail(self, reason: str) -> None:
        self.job_stopped_reason = reason
        self._mark_stopped(success=False)

    def _stop_attempt(self) -> None:
        super()._stop_attempt()
        if self.latest_attempt:
            self.latest_attempt["container"]["exitCode"] = self.exit_code
            if self._container_reason:
                self.latest_attempt["container"]["reason"] = self._container_reason
            self.latest_attempt["statusReason"] = self.job_stopped_reason or ""

    def _container_details(self) -> dict[str, Any]:
        details = super()._container_details()
        details["image"] = self._get_container_property("image", "")
        if self.job_stopped and self.exit_code is not None:
            details["exitCode"] = self.exit_code
        if self._container_reason:
            details["reason"] = self._container_reason
        return details


def _rule_matches(
    rule: dict[str, str], exit_code: int | None, status_reason: str, reason: str | None
) -> bool:
    checks = [
        ("onExitCode", "" if exit_code is None else str(exit_code)),
        ("onStatusReason", status_reason or ""),
        ("onReason", reason or ""),
    ]
    return all(fnmatch.fnmatchcase(value, rule[key]) for key, value in checks if key in rule)


BATCH_SERVICE_LINKED_ROLE = "AWSServiceRoleForBatch"
_BATCH_SERVICE = "batch.amazonaws.com"


def _service_linked_role_arn(backend: moto_batch.BatchBackend) -> str:
    """The Batch service-linked role, created on first use as AWS does.

    CreateComputeEnvironment, serviceRole: "If your account already created the Batch service-linked role,
    that role is used by default ... If [it] doesn't exist in your account, and no role is specified here,
    the service attempts to create [it]" (AWS Batch API Reference, CreateComputeEnvironment,
    https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateComputeEnvironment.html).
    """
    iam = backend.iam_backend
    try:
        return iam.get_role(BATCH_SERVICE_LINKED_ROLE).arn
    except IAMNotFoundException:
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"Service": [_BATCH_SERVICE]}}
            ],
        }
        role = iam.create_role(
            BATCH_SERVICE_LINKED_ROLE,
            json.dumps(policy),
            f"/aws-service-role/{_BATCH_SERVICE}/",
            permissions_boundary=None,
            description="Service-linked role for AWS Batch",
            tags=[],
            max_session_duration="3600",
            linked_service=_BATCH_SERVICE,
        )
        return role.arn


def _create_compute_environment(original: Any) -> Any:
    def create_compute_environment(
        self: moto_batch.BatchBackend,
        compute_environment_name: str,
        _type: str,
        state: str,
        compute_resources: dict[str, Any],
        service_role: str,
        tags: dict[str, str] | None = None,
    ) -> Any:
        # Only a MANAGED environment falls back to the service-linked role; an UNMANAGED one without
        # serviceRole keeps moto's (and AWS's) "ServiceRole is required" ClientException (Batch User Guide,
        # "Using service-linked roles for AWS Batch").
        if not service_role and _type == "MANAGED":
            service_role = _service_linked_role_arn(self)
        return original(self, compute_environment_name, _type, state, compute_resources, service_role, tags)

    return create_compute_environment


def _create_job_queue(original: Any) -> Any:
    def create_job_queue(
        self: moto_batch.BatchBackend,
        queue_name: str,
        priority: str,
        schedule_policy: str | None,
        state: str,
        compute_env_order: list[dict[str, str]],
        tags: dict[str, str] | None = None,
    ) -> Any:
        # CreateJobQueue: `state` is optional (Required: No) and a new queue is ENABLED
        # (https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateJobQueue.html).
        state = state or "ENABLED"
        return original(self, queue_name, priority, schedule_policy, state, compute_env_order, tags)

    return create_job_queue


def install() -> None:
    moto_batch.Job = SandboxBatchJob  # BatchBackend.submit_job builds jobs through this name
    backend = moto_batch.BatchBackend
    backend.create_compute_environment = _create_compute_environment(backend.create_compute_environment)
    backend.create_job_queue = _create_job_queue(backend.create_job_queue)
