"""What orchard's SageMaker job operators add to the provider's: retry-safe jobs, live logs, sized waits.

`RetrySafeSageMakerJobMixin` holds all of it for the training and processing operators, which only say what
differs (the job kind, its describe and create calls).

The provider's operators (apache-airflow-providers-amazon 9.39) on a task retry start a *second* job
(`action_if_job_exists="timestamp"`), print the job's log only when it ended before deferring, and wait at
most 60 polls (~30 min at the default interval). Here:

* a retry looks for the job(s) this task already started under its orchard.naming name: one still running
  is waited on, a completed one is the result, and only a failed or stopped one is followed by a new
  attempt `<name>-r2`, `<name>-r3`, ... (training resumes from the checkpoint S3 URI they share);
* the job's CloudWatch log lines reach the task log while the task is deferred (the trigger logs them as
  they come, `orchard.triggers.job_logs`); an event from a trigger that did not (`log_printed` missing)
  gets them printed when the wait ends, success or not;
* the wait's attempts x delay come from the job's own MaxRuntime (MaxWaitTime with managed spot) plus
  `START_AND_UPLOAD_MARGIN_S`, and the delay may be a template (a DAG param) so the sandbox polls fast;
* a job that ends Failed with `orchard.errors.INPUT_ERROR_PREFIX` first in its FailureReason fails the task
  with InputError (no retry); a Stopped job fails the task (the provider's waiter counts it a success);
* a person's "mark failed" / "mark success" / "clear" stops the job (the trigger's `on_kill` while the task
  is deferred, the operator's `on_kill` while it runs); a worker's graceful shutdown does not
  (`killed_by_a_person`), so the retry reattaches to the job still running;
* a job that ends Completed ends the task in the triggerer (`end_in_trigger`, issue 17.1): the resume would
  only describe the job and return it, which the trigger does and pushes as the same return value;
* a job that AWS says does not exist (ValidationException) ends the wait at the next poll: botocore's
  `*CompletedOrStopped` waiters treat that error as a terminal failure.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from botocore.exceptions import ClientError

from orchard.operators.stop_requests import ended_by_a_person
from orchard.triggers.task_end import may_end_in_trigger
from orchard.waits import polls_covering

SAGEMAKER_NAME_LIMIT = 63
# Provisioning, image pull, data download and model upload happen outside MaxRuntime.
START_AND_UPLOAD_MARGIN_S = 3600
MAX_LOG_LINES = 5000
RUNNING_STATES = ("InProgress", "Stopping")


def attempt_name(base: str, attempt: int) -> str:
    """`base` for attempt 1, then `base-r<attempt>` cut to SageMaker's 63 characters."""
    if attempt <= 1:
        return base
    tag = f"-r{attempt}"
    return base[: SAGEMAKER_NAME_LIMIT - len(tag)].rstrip("-") + tag


def latest_attempt(base: str, describe: Callable[[str], dict]) -> tuple[int, dict | None]:
    """(attempt, description) of the newest job started under `base`; (0, None) when there is none."""
    attempt, found = 0, None
    while True:
        try:
            description = describe(attempt_name(base, attempt + 1))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
                return attempt, found
            raise
        attempt, found = attempt + 1, description


def wait_budget(stopping_condition: dict[str, Any] | None, check_interval: int) -> tuple[int, int]:
    """(max_attempts, seconds) that cover the job's longest legal life plus the start/upload margin."""
    condition = stopping_condition or {}
    longest = int(condition.get("MaxWaitTimeInSeconds") or condition.get("MaxRuntimeInSeconds") or 86400)
    seconds = longest + START_AND_UPLOAD_MARGIN_S
    return polls_covering(seconds, check_interval), seconds


def print_job_log(operator: Any, log_group: str, job_name: str) -> None:
    """Every line the job wrote to CloudWatch Logs (streams `<job>/algo-N-...`), in the task log."""
    from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

    hook = AwsLogsHook(aws_conn_id=operator.aws_conn_id, region_name=operator.region_name)
    try:
        streams = hook.conn.describe_log_streams(logGroupName=log_group, logStreamNamePrefix=f"{job_name}/")[
            "logStreams"
        ]
    except ClientError as error:
        operator.log.warning("no CloudWatch log for %s in %s: %s", job_name, log_group, error)
        return
    printed = 0
    for stream in streams:
        for event in hook.get_log_events(log_group, stream["logStreamName"], start_from_head=True):
            if printed == MAX_LOG_LINES:
                operator.log.info(
                    "[%s] ... more lines in CloudWatch Logs %s / %s",
                    job_name,
                    log_group,
                    stream["logStreamName"],
                )
                return
            operator.log.info("[%s] %s", job_name, event["message"].rstrip("\n"))
            printed += 1


# --------------------------------------------------------------------------- outcomes, kills, cleanup

KINDS = {
    # kind: (describe, stop, name key, status key) of the SageMaker client
    "Processing": (
        "describe_processing_job",
        "stop_processing_job",
        "ProcessingJobName",
        "ProcessingJobStatus",
    ),
    "Training": ("describe_training_job", "stop_training_job", "TrainingJobName", "TrainingJobStatus"),
}


def check_outcome(kind: str, description: dict) -> None:
    """Fail the task on a job that did not complete; an input error (INPUT_ERROR_PREFIX first in its
    FailureReason, the job's /opt/ml/output/failure) is an InputError: no Airflow retry, one billed job.

    SageMaker's own waiters count Stopped as success (botocore's `*CompletedOrStopped`): a job stopped by a
    person, by MaxRuntime or by the run's cleanup has no usable output, so it fails the task here."""
    from airflow.providers.common.compat.sdk import AirflowException

    from orchard.errors import INPUT_ERROR_PREFIX, InputError, is_input_failure

    _, _, name_key, status_key = KINDS[kind]
    name, status = description[name_key], description[status_key]
    reason = description.get("FailureReason") or ""
    if status == "Failed" and is_input_failure(reason):
        detail = reason.split(INPUT_ERROR_PREFIX.strip(), 1)[1].strip()
        raise InputError(
            f"SageMaker {kind.lower()} job {name} refused its input (not retried: fix the "
            f"input, then clear the task): {detail}"
        )
    if status == "Stopped":
        raise AirflowException(
            f"SageMaker {kind.lower()} job {name} was stopped ({reason or 'StopJob'}): it "
            "has no output; a retry of this task starts a new attempt"
        )


def stop_if_running(client: Any, kind: str, name: str) -> bool:
    """Stop job `name` if it is InProgress; True when a stop was sent. A job that does not exist: False."""
    describe, stop, name_key, status_key = KINDS[kind]
    try:
        status = getattr(client, describe)(**{name_key: name})[status_key]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    if status != "InProgress":
        return False
    getattr(client, stop)(**{name_key: name})
    return True


def stop_all_attempts(client: Any, kind: str, base: str) -> list[str]:
    """Stop every attempt (`base`, `base-r2`, ...) of a job still InProgress: the run's cleanup, which
    finds the jobs by their deterministic names whatever task failed (nothing read from XCom)."""
    describe, _, name_key, _ = KINDS[kind]
    attempts, _ = latest_attempt(base, lambda name: getattr(client, describe)(**{name_key: name}))
    names = [attempt_name(base, n) for n in range(1, attempts + 1)]
    return [name for name in names if stop_if_running(client, kind, name)]


def killed_by_a_person(operator: Any) -> bool:
    """Whether the SIGTERM behind `on_kill` was a person's action, not a worker's shutdown
    (orchard.operators.stop_requests)."""
    return ended_by_a_person(getattr(operator, "_orchard_ti", None), operator.log)


def stop_on_a_persons_action(operator: Any, kind: str) -> None:
    """`on_kill` of the SageMaker job operators: stop the job a person ended the task of; keep it running on
    a worker's shutdown or a timeout (the retry reattaches to it by name)."""
    job = getattr(operator, "_orchard_job", None)
    if not job:
        return
    if not killed_by_a_person(operator):
        operator.log.info(
            "on_kill without a person's action (worker shutdown, timeout): %s keeps running; "
            "the retry reattaches to it",
            job,
        )
        return
    if stop_if_running(operator.hook.conn, kind, job):
        operator.log.info("stopped SageMaker %s job %s (a person acted on the task)", kind.lower(), job)


def remember_task_instance(operator: Any, context: Any) -> None:
    """What `killed_by_a_person` needs to find this task instance later (on_kill has no context)."""
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is not None:
        operator._orchard_ti = ti


# --------------------------------------------------------------------------- the operators' shared base


class RetrySafeSageMakerJobMixin(BaseOperator):
    """Retry-safe start, sized deferred wait, live log and stop-on-a-person's-action of one SageMaker job,
    mixed into the provider's training / processing operator (listed first, before the provider's class).
    It derives from BaseOperator so that Airflow's operator metaclass wraps its `__init__` and `execute`
    as it wraps the provider's (default_args, the executor safeguard); BaseOperator stays last in the MRO.

    A subclass names its `kind` ("Training" / "Processing"), its CloudWatch `log_group`, and how to
    `describe_job` and `start_job`; its `config` holds `<kind>JobName` and the create request.

    :param check_interval: seconds between polls; may be a template such as "{{ params.poll_seconds }}".
    Returns `{kind: <Describe...Job>}` as the provider's operators do.
    """

    kind: ClassVar[str]
    log_group: ClassVar[str]
    restart_note: ClassVar[str] = ""  # why a new attempt after a failed one is safe, for the task log

    # set by the provider's operator, after this class in the MRO (SageMakerBaseOperator, AwsBaseOperator)
    config: dict[str, Any]
    hook: Any
    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict | None
    deferrable: bool
    wait_for_completion: bool
    print_log: bool

    def __init__(self, *, check_interval: int | str = 60, **kwargs: Any):
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("print_log", True)
        super().__init__(check_interval=check_interval, **kwargs)  # the provider operator's __init__

    def describe_job(self, name: str) -> dict:
        raise NotImplementedError

    def start_job(self) -> None:
        """Create the job `self.config` describes (its name already the attempt's)."""
        raise NotImplementedError

    def execute(self, context: Any) -> dict:
        self.check_interval = int(self.check_interval)
        remember_task_instance(self, context)
        self.preprocess_config()
        name_key, status_key = KINDS[self.kind][2:]
        base = self.config[name_key]
        attempt, description = latest_attempt(base, self.describe_job)
        noun = f"{self.kind.lower()} job"
        if description and description[status_key] == "Completed":
            self.log.info("%s %s already completed (an earlier try started it)", noun, description[name_key])
            return {self.kind: serialize_description(description)}
        if description and description[status_key] in RUNNING_STATES:
            self.log.info("waiting on %s %s, started by an earlier try", noun, description[name_key])
            self._orchard_job = description[name_key]
            return self._wait(self._orchard_job)
        if description:
            self.log.info(
                "%s %s ended %s: starting %s%s",
                noun,
                description[name_key],
                description[status_key],
                attempt_name(base, attempt + 1),
                self.restart_note,
            )
        self.config[name_key] = self._orchard_job = attempt_name(base, attempt + 1)
        self.start_job()
        self.log.info("started SageMaker %s %s", noun, self._orchard_job)
        return self._wait(self._orchard_job)

    def job_trigger(self, job_name: str) -> Any:
        """The deferred wait on `job_name`, sized to the job's longest legal life."""
        from orchard.triggers.sagemaker_job import OrchardSageMakerTrigger

        attempts, _ = wait_budget(self.config.get("StoppingCondition"), int(self.check_interval))
        return OrchardSageMakerTrigger(
            job_name=job_name,
            job_type=self.kind,
            waiter_delay=int(self.check_interval),
            waiter_max_attempts=attempts,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
            stream_logs=bool(self.print_log),
            end_in_trigger=may_end_in_trigger(self),
        )

    def _wait(self, job_name: str) -> dict:
        if not (self.deferrable and self.wait_for_completion):
            return {self.kind: serialize_description(self.describe_job(job_name))}
        _, seconds = wait_budget(self.config.get("StoppingCondition"), self.check_interval)
        self.defer(
            timeout=datetime.timedelta(seconds=seconds),
            trigger=self.job_trigger(job_name),
            method_name="execute_complete",
        )
        return {}  # not reached: defer() raises

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        payload = event or {}
        job_name = payload.get("job_name") or self.config.get(KINDS[self.kind][2], "")
        if self.print_log and job_name and not payload.get("log_printed"):
            print_job_log(self, self.log_group, job_name)
        if job_name:  # Failed with an input error: InputError; Stopped: a failure (the waiter says success)
            check_outcome(self.kind, self.describe_job(job_name))
        return super().execute_complete(context, event)

    def on_kill(self) -> None:
        """Stop the job on a person's action, never on a worker's graceful shutdown."""
        stop_on_a_persons_action(self, self.kind)


def serialize_description(description: dict) -> dict:
    """A Describe...Job answer as the provider's operators return it (datetimes as strings)."""
    from airflow.providers.amazon.aws.operators.sagemaker import serialize

    return serialize(description)
