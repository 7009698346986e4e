"""What orchard's SageMaker job operators add to the provider's: retry-safe jobs, logs after deferral, sized waits.

The provider's operators (apache-airflow-providers-amazon 9.39) on a task retry start a *second* job
(`action_if_job_exists="timestamp"`), print the job's log only when it ended before deferring, and wait at
most 60 polls (~30 min at the default interval). Here:

* a retry looks for the job(s) this task already started under its orchard.naming name: one still running
  is waited on, a completed one is the result, and only a failed or stopped one is followed by a new
  attempt `<name>-r2`, `<name>-r3`, ... (training resumes from the checkpoint S3 URI they share);
* the job's CloudWatch log lines are printed in the task log when the wait ends, success or not;
* the wait's attempts x delay come from the job's own MaxRuntime (MaxWaitTime with managed spot) plus
  `START_AND_UPLOAD_MARGIN_S`, and the delay may be a template (a DAG param) so the sandbox polls fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

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
    return math.ceil(seconds / max(int(check_interval), 1)) + 1, seconds


def print_job_log(operator: Any, log_group: str, job_name: str) -> None:
    """Every line the job wrote to CloudWatch Logs (streams `<job>/algo-N-...`), in the task log."""
    from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

    hook = AwsLogsHook(aws_conn_id=operator.aws_conn_id, region_name=operator.region_name)
    try:
        streams = hook.conn.describe_log_streams(logGroupName=log_group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    except ClientError as error:
        operator.log.warning("no CloudWatch log for %s in %s: %s", job_name, log_group, error)
        return
    printed = 0
    for stream in streams:
        for event in hook.get_log_events(log_group, stream["logStreamName"], start_from_head=True):
            if printed == MAX_LOG_LINES:
                operator.log.info("[%s] ... more lines in CloudWatch Logs %s / %s", job_name, log_group, stream["logStreamName"])
                return
            operator.log.info("[%s] %s", job_name, event["message"].rstrip("\n"))
            printed += 1
