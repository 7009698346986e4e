"""Deploy an edge package to an IoT fleet: one IoT job on the thing group, waited on per device."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.common.compat.sdk import AirflowException

from orchard.hooks.iot import IotHook

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


class IotDeployOperator(AwsBaseOperator[IotHook]):
    """CreateJob on the fleet's thing group, then wait (deferrable) until every device's execution ended.

    The job times out per device after `device_timeout_minutes` (IN_PROGRESS → TIMED_OUT on AWS).
    Returns {job_id, outcomes: [{device, status, details}], succeeded, failed}; raises when no device
    succeeded or `fail_on_device_failure` and one failed — after logging each device's outcome.
    """

    aws_hook_class = IotHook
    template_fields: Sequence[str] = ("job_id", "thing_group_arn", "package", "waiter_delay", "waiter_max_attempts",
                                      "device_timeout_minutes")

    def __init__(self, *, job_id: str, thing_group_arn: str, package: dict[str, Any] | str,
                 device_timeout_minutes: int = 30, fail_on_device_failure: bool = True, deferrable: bool = True,
                 waiter_delay: int = 30, waiter_max_attempts: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.job_id, self.thing_group_arn, self.package = job_id, thing_group_arn, package
        self.device_timeout_minutes, self.fail_on_device_failure = device_timeout_minutes, fail_on_device_failure
        self.deferrable, self.waiter_delay, self.waiter_max_attempts = deferrable, waiter_delay, waiter_max_attempts

    def _attempts(self) -> int:
        if self.waiter_max_attempts:
            return int(self.waiter_max_attempts)
        return int(int(self.device_timeout_minutes) * 60 / max(1, int(self.waiter_delay))) + 10

    def execute(self, context: Any) -> dict[str, Any]:
        iot = self.hook.conn
        package = json.loads(self.package) if isinstance(self.package, str) else self.package
        try:
            status = iot.describe_job(jobId=self.job_id)["job"]["status"]
            self.log.info("IoT job %s exists (%s): waiting on it", self.job_id, status)
        except iot.exceptions.ResourceNotFoundException:
            iot.create_job(
                jobId=self.job_id, targets=[self.thing_group_arn], document=json.dumps(deploy_document(package)),
                description=f"deploy {package['model_name']} {package['version']} ({package['variant']})",
                targetSelection="SNAPSHOT",
                timeoutConfig={"inProgressTimeoutInMinutes": int(self.device_timeout_minutes)},
            )
            self.log.info("Created IoT job %s on %s: %s", self.job_id, self.thing_group_arn, package["package_uri"])
        if self.deferrable:
            from orchard.triggers.iot_job import (
                IotJobCompletedTrigger,  # here: the DAG file's parse does not pay for the trigger's imports
            )

            self.defer(
                trigger=IotJobCompletedTrigger(job_id=self.job_id, waiter_delay=int(self.waiter_delay),
                                               waiter_max_attempts=self._attempts(), aws_conn_id=self.aws_conn_id,
                                               region_name=self.region_name),
                method_name="execute_complete",
            )
        self.hook.get_waiter("job_completed").wait(
            jobId=self.job_id, WaiterConfig={"Delay": int(self.waiter_delay), "MaxAttempts": self._attempts()})
        return self._outcome(self.job_id, context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = validate_execute_complete_event(event)
        if event.get("status") != "success":
            raise AirflowException(f"IoT job {self.job_id} did not complete: {event}")
        return self._outcome(event["job_id"], context)

    def _outcome(self, job_id: str, context: Any) -> dict[str, Any]:
        outcomes = self.hook.job_executions(job_id)
        context["ti"].xcom_push(key="device_outcomes", value=outcomes)  # for the report, even if this task fails
        for outcome in outcomes:
            self.log.info("device %s: %s %s", outcome["device"], outcome["status"], json.dumps(outcome["details"]))
        succeeded = [o["device"] for o in outcomes if o["status"] == "SUCCEEDED"]
        failed = [o["device"] for o in outcomes if o["status"] != "SUCCEEDED"]
        if not succeeded or (failed and self.fail_on_device_failure):
            raise AirflowException(f"IoT job {job_id}: {len(failed)} of {len(outcomes)} devices did not succeed: "
                                   + "; ".join(f"{o['device']} {o['status']} {o['details'].get('reason', '')}"
                                               for o in outcomes if o["status"] != "SUCCEEDED"))
        return {"job_id": job_id, "outcomes": outcomes, "succeeded": succeeded, "failed": failed}
