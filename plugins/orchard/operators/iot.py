"""Deploy an edge package to an IoT fleet: one IoT job on the thing group, waited on per device."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.common.compat.sdk import AirflowException

from orchard.hooks.iot import IotHook
from orchard.triggers.task_end import may_end_in_trigger

OUTCOMES_KEY = "device_outcomes"  # each device's outcome, for the run's report
DEPLOY_OPERATION = "orchard.deploy-edge-package"  # the agent's job type (include/edge_agent/agent.py)


def deploy_document(package: dict[str, Any]) -> dict[str, Any]:
    """The IoT job document: where the package is and how a device proves it is the one signed."""
    return {
        "operation": DEPLOY_OPERATION,
        "model_name": package["model_name"],
        "version": package["version"],
        "variant": package["variant"],
        "package_uri": package["package_uri"],
        "sha256": package["sha256"],
        "signature": package["signature"],
        "signing_key_id": package["signing_key_arn"],
        "signing_algorithm": package["signing_algorithm"],
    }


def rollout_configs(
    max_per_minute: int, abort_failure_percent: float, abort_min_executed: int, device_timeout_minutes: int
) -> dict[str, Any]:
    """CreateJob's rollout, abort and timeout configurations (AWS IoT API reference: CreateJob,
    JobExecutionsRolloutConfig, AbortCriteria, TimeoutConfig — https://docs.aws.amazon.com/iot/latest/
    apireference/API_CreateJob.html). abort_failure_percent 0: no abort criteria."""
    configs: dict[str, Any] = {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": int(max_per_minute)},
        "timeoutConfig": {"inProgressTimeoutInMinutes": int(device_timeout_minutes)},
    }
    if float(abort_failure_percent) > 0:
        configs["abortConfig"] = {
            "criteriaList": [
                {
                    "failureType": "ALL",
                    "action": "CANCEL",
                    "thresholdPercentage": round(float(abort_failure_percent), 2),
                    "minNumberOfExecutedThings": int(abort_min_executed),
                }
            ]
        }
    return configs


class IotDeployOperator(AwsBaseOperator[IotHook]):
    """CreateJob on the fleet's thing group with a rollout policy, then wait (deferrable) for the rollout.

    The job rolls out at most `max_per_minute` devices a minute, is canceled by AWS when
    `abort_failure_percent` of the devices that got it failed (after `abort_min_executed` of them), and each
    device has `device_timeout_minutes` once IN_PROGRESS. A device that is offline stays QUEUED — on AWS that
    never times out — so success is judged when the job ended or `rollout_window_minutes` after it was
    created: at least `min_success_percent` of the targeted devices SUCCEEDED. Devices still QUEUED or
    IN_PROGRESS then are listed as `pending`; the job stays open for them (they get the model when they
    come online). Returns {job_id, job_status, outcomes: [{device, status, details}], succeeded, failed,
    pending}; raises when the policy is not met — after logging each device's outcome. A rollout that met
    the policy ends the task in the triggerer (`end_in_trigger`): the resume would only read the outcomes and
    push them and that value, which the trigger does (issue 17.1); one that did not resumes to fail here.
    """

    aws_hook_class = IotHook
    template_fields: Sequence[str] = (
        "job_id",
        "thing_group_arn",
        "package",
        "waiter_delay",
        "device_timeout_minutes",
        "rollout_window_minutes",
        "min_success_percent",
        "max_per_minute",
        "abort_failure_percent",
        "abort_min_executed",
    )

    def __init__(
        self,
        *,
        job_id: str,
        thing_group_arn: str,
        package: dict[str, Any] | str,
        device_timeout_minutes: int = 30,
        rollout_window_minutes: float = 60,
        min_success_percent: float = 100,
        max_per_minute: int = 100,
        abort_failure_percent: float = 50,
        abort_min_executed: int = 1,
        deferrable: bool = True,
        waiter_delay: int = 30,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.job_id, self.thing_group_arn, self.package = job_id, thing_group_arn, package
        self.device_timeout_minutes = device_timeout_minutes
        self.rollout_window_minutes = rollout_window_minutes
        self.min_success_percent, self.max_per_minute = min_success_percent, max_per_minute
        self.abort_failure_percent, self.abort_min_executed = abort_failure_percent, abort_min_executed
        self.deferrable, self.waiter_delay = deferrable, waiter_delay

    def execute(self, context: Any) -> dict[str, Any]:
        iot = self.hook.conn
        package = json.loads(self.package) if isinstance(self.package, str) else self.package
        try:
            job = iot.describe_job(jobId=self.job_id)["job"]
            self.log.info("IoT job %s exists (%s): waiting on it", self.job_id, job["status"])
        except iot.exceptions.ResourceNotFoundException:
            iot.create_job(
                jobId=self.job_id,
                targets=[self.thing_group_arn],
                document=json.dumps(deploy_document(package)),
                description=f"deploy {package['model_name']} {package['version']} ({package['variant']})",
                targetSelection="SNAPSHOT",
                **rollout_configs(
                    self.max_per_minute,
                    self.abort_failure_percent,
                    self.abort_min_executed,
                    self.device_timeout_minutes,
                ),
            )
            self.log.info(
                "Created IoT job %s on %s: %s", self.job_id, self.thing_group_arn, package["package_uri"]
            )
            job = iot.describe_job(jobId=self.job_id)["job"]
        # The window runs from the job's creation: a retried task keeps the first try's window.
        window_ends_at = job["createdAt"].timestamp() + float(self.rollout_window_minutes) * 60
        if self.deferrable:
            from orchard.triggers.iot_job import (
                IotJobCompletedTrigger,  # here: the DAG file's parse does not pay for the trigger's imports
            )

            self.defer(
                trigger=IotJobCompletedTrigger(
                    job_id=self.job_id,
                    waiter_delay=int(self.waiter_delay),
                    window_ends_at=window_ends_at,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    end_in_trigger=may_end_in_trigger(self),
                    min_success_percent=self.min_success_percent,
                    rollout_window_minutes=self.rollout_window_minutes,
                ),
                method_name="execute_complete",
            )
        from orchard.triggers.iot_job import JOB_ENDED

        while job["status"] not in JOB_ENDED and time.time() < window_ends_at:
            time.sleep(int(self.waiter_delay))
            job = iot.describe_job(jobId=self.job_id)["job"]
        return self._outcome(self.job_id, context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = validate_execute_complete_event(event)
        if event.get("status") != "success":
            raise AirflowException(f"IoT job {self.job_id}: waiting on its rollout failed: {event}")
        return self._outcome(event["job_id"], context)

    def _outcome(self, job_id: str, context: Any) -> dict[str, Any]:
        job_status, outcomes = read_rollout(self.hook, job_id)
        context["ti"].xcom_push(key=OUTCOMES_KEY, value=outcomes)  # for the report, even if this task fails
        log_outcomes(self.log, outcomes)
        result = judge_rollout(
            job_id, job_status, outcomes, self.min_success_percent, self.rollout_window_minutes
        )
        log_pending(self.log, result)
        return result


def read_rollout(hook: IotHook, job_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The job's status and each targeted device's execution (status, details), as the devices reported."""
    return hook.conn.describe_job(jobId=job_id)["job"]["status"], hook.job_executions(job_id)


def judge_rollout(
    job_id: str,
    job_status: str,
    outcomes: list[dict[str, Any]],
    min_success_percent: float | str,
    rollout_window_minutes: float | str,
) -> dict[str, Any]:
    """The deploy task's return value when the rollout policy is met; AirflowException naming every device
    that did not succeed when it is not. Shared by the operator's resume and the trigger that ends the task
    (orchard.triggers.iot_job)."""
    succeeded = [o["device"] for o in outcomes if o["status"] == "SUCCEEDED"]
    pending = [o["device"] for o in outcomes if o["status"] in ("QUEUED", "IN_PROGRESS")]
    failed = [o["device"] for o in outcomes if o["device"] not in {*succeeded, *pending}]
    share = 100.0 * len(succeeded) / len(outcomes) if outcomes else 0.0
    if job_status == "CANCELED" or share < float(min_success_percent) or not succeeded:
        why = (
            "was canceled (its abortConfig, or CancelJob)"
            if job_status == "CANCELED"
            else f"succeeded on {len(succeeded)} of {len(outcomes)} devices ({share:.0f}%), under "
            f"min_success_percent {min_success_percent} within {rollout_window_minutes} min"
        )
        others = "; ".join(
            f"{o['device']} {o['status']} {o['details'].get('reason', '')}".rstrip()
            for o in outcomes
            if o["status"] != "SUCCEEDED"
        )
        missing = len(outcomes) - len(succeeded)
        raise AirflowException(
            f"IoT job {job_id} {why}: {missing} of {len(outcomes)} devices did not succeed: {others}"
        )
    return {
        "job_id": job_id,
        "job_status": job_status,
        "outcomes": outcomes,
        "succeeded": succeeded,
        "failed": failed,
        "pending": pending,
    }


def log_outcomes(log: Any, outcomes: list[dict[str, Any]]) -> None:
    for outcome in outcomes:
        log.info("device %s: %s %s", outcome["device"], outcome["status"], json.dumps(outcome["details"]))


def log_pending(log: Any, result: dict[str, Any]) -> None:
    if result["pending"]:
        share = 100.0 * len(result["succeeded"]) / len(result["outcomes"])
        log.info(
            "rollout policy met (%.0f%% succeeded); job %s stays open for %s",
            share,
            result["job_id"],
            ", ".join(result["pending"]),
        )
