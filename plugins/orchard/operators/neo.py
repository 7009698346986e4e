"""Compile a model for a target device with SageMaker Neo (the provider has no compilation operator)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import WaiterError

from orchard.hooks.neo import TERMINAL, NeoHook
from orchard.operators.sagemaker_job_retry import START_AND_UPLOAD_MARGIN_S
from orchard.triggers.task_end import may_end_in_trigger
from orchard.waits import polls_covering

DOWNSTREAM_KEYS = (
    "job_name",
    "model_artifacts",
)  # XComs of their own: downstream tasks take them as XComArgs

# "linux_<arch>[_<accelerator>]" platforms (OutputConfig.TargetPlatform); anything else is a Neo TargetDevice.
PLATFORMS = {
    "linux_x86_64": {"Os": "LINUX", "Arch": "X86_64"},
    "linux_arm64": {"Os": "LINUX", "Arch": "ARM64"},
    "linux_arm_eabihf": {"Os": "LINUX", "Arch": "ARM_EABIHF"},
    "linux_arm64_nvidia": {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"},
    "linux_x86_64_nvidia": {"Os": "LINUX", "Arch": "X86_64", "Accelerator": "NVIDIA"},
}


def target_output_config(target: str) -> dict[str, Any]:
    if target in PLATFORMS:
        return {"TargetPlatform": dict(PLATFORMS[target])}
    return {"TargetDevice": target}


class NeoCompilationOperator(AwsBaseOperator[NeoHook]):
    """CreateCompilationJob, then wait (deferrable) until COMPLETED; FAILED/STOPPED raise with FailureReason.

    A retry finds the job its first try started (same name from orchard.naming) and waits on it. A job
    FAILED with Neo's `ClientError:` (the model or its input config is wrong) is an InputError: no retry. A
    person's mark failed / clear stops the job (`on_kill`, the trigger's while deferred); a worker's graceful
    shutdown does not. Returns {job_name, status, model_artifacts, digest, seconds, target, compiler_options}
    (`compilation_result`). A COMPLETED job ends the task in the triggerer (`end_in_trigger`): the resume
    would only describe it and push that value, which the trigger pushes (issue 17.1).
    """

    aws_hook_class = NeoHook
    template_fields: Sequence[str] = (
        "job_name",
        "role_arn",
        "model_uri",
        "framework",
        "data_input_config",
        "target",
        "output_uri",
        "compiler_options",
        "max_runtime_s",
        "waiter_delay",
        "waiter_max_attempts",
    )

    def __init__(
        self,
        *,
        job_name: str,
        role_arn: str,
        model_uri: str,
        framework: str,
        data_input_config: str,
        target: str,
        output_uri: str,
        compiler_options: str = "",
        max_runtime_s: int = 900,
        deferrable: bool = True,
        waiter_delay: int = 30,
        waiter_max_attempts: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.job_name, self.role_arn, self.model_uri, self.framework = (
            job_name,
            role_arn,
            model_uri,
            framework,
        )
        self.data_input_config, self.target, self.output_uri = data_input_config, target, output_uri
        self.compiler_options, self.max_runtime_s = compiler_options, max_runtime_s
        self.deferrable, self.waiter_delay, self.waiter_max_attempts = (
            deferrable,
            waiter_delay,
            waiter_max_attempts,
        )

    def _attempts(self) -> int:
        """Enough polls to outlast the job's own MaxRuntimeInSeconds, plus a margin for start and upload."""
        if self.waiter_max_attempts:
            return int(self.waiter_max_attempts)
        return polls_covering(int(self.max_runtime_s) + START_AND_UPLOAD_MARGIN_S, self.waiter_delay)

    def execute(self, context: Any) -> dict[str, Any]:
        from orchard.operators.sagemaker_job_retry import remember_task_instance

        remember_task_instance(self, context)
        existing = self.hook.describe(self.job_name)
        if existing is None:
            output_config: dict[str, Any] = {
                "S3OutputLocation": self.output_uri,
                **target_output_config(self.target),
            }
            if self.compiler_options:
                output_config["CompilerOptions"] = self.compiler_options
            self.hook.conn.create_compilation_job(
                CompilationJobName=self.job_name,
                RoleArn=self.role_arn,
                InputConfig={
                    "S3Uri": self.model_uri,
                    "DataInputConfig": self.data_input_config,
                    "Framework": self.framework.upper(),
                },
                OutputConfig=output_config,
                StoppingCondition={"MaxRuntimeInSeconds": int(self.max_runtime_s)},
            )
            self.log.info(
                "Started Neo compilation job %s (%s -> %s)", self.job_name, self.model_uri, self.target
            )
        else:
            self.log.info(
                "Compilation job %s exists (%s): waiting on it",
                self.job_name,
                existing["CompilationJobStatus"],
            )
            if existing["CompilationJobStatus"] in TERMINAL:
                return self._result(existing, context)
        if self.deferrable:
            from orchard.triggers.neo import (
                NeoCompilationTrigger,  # here: the DAG file's parse does not pay for the trigger's imports
            )

            self.defer(
                trigger=NeoCompilationTrigger(
                    job_name=self.job_name,
                    waiter_delay=int(self.waiter_delay),
                    waiter_max_attempts=self._attempts(),
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    end_in_trigger=may_end_in_trigger(self),
                    target=self.target,
                    compiler_options=self.compiler_options,
                ),
                method_name="execute_complete",
            )
        try:
            self.hook.get_waiter("compilation_job_complete").wait(
                CompilationJobName=self.job_name,
                WaiterConfig={"Delay": int(self.waiter_delay), "MaxAttempts": self._attempts()},
            )
        except WaiterError as error:  # FAILED/STOPPED end the waiter too: the job's status says why, below
            self.log.info("Waiter ended: %s", error)
        return self._result(
            self.hook.conn.describe_compilation_job(CompilationJobName=self.job_name), context
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = validate_execute_complete_event(event)
        return self._result(
            self.hook.conn.describe_compilation_job(CompilationJobName=event["job_name"]), context
        )

    def _result(self, job: dict[str, Any], context: Any) -> dict[str, Any]:
        result = compilation_result(job, self.target, self.compiler_options)
        for key in DOWNSTREAM_KEYS:
            context["ti"].xcom_push(key=key, value=result[key])
        return result

    def on_kill(self) -> None:
        """Stop the compilation on a person's action, never on a worker's graceful shutdown."""
        from orchard.operators.sagemaker_job_retry import killed_by_a_person

        if killed_by_a_person(self):
            stop_compilation(self.hook.conn, self.job_name)


def compilation_result(job: dict[str, Any], target: str, compiler_options: str) -> dict[str, Any]:
    """The compile task's return value for a described job (DescribeCompilationJob's answer); raises unless
    it COMPLETED: InputError for Neo's `ClientError:` (the model or its input config), else AirflowException.
    Shared by the operator's resume and the trigger that ends the task (orchard.triggers.neo)."""
    status = job["CompilationJobStatus"]
    reason = job.get("FailureReason") or ""
    if status == "FAILED" and reason.startswith("ClientError"):
        from orchard.errors import InputError

        raise InputError(
            f"Neo compilation job {job['CompilationJobName']} ended FAILED: {reason} (the "
            "model, framework or input_shape is wrong: fix them; not retried)"
        )
    if status != "COMPLETED":
        raise AirflowException(
            f"Neo compilation job {job['CompilationJobName']} ended {status}: {reason or 'no reason given'}"
        )
    seconds = (job["CompilationEndTime"] - job["CompilationStartTime"]).total_seconds()
    return {
        "job_name": job["CompilationJobName"],
        "status": status,
        "model_artifacts": job["ModelArtifacts"]["S3ModelArtifacts"],
        "digest": (job.get("ModelDigests") or {}).get("ArtifactDigest", ""),
        "seconds": round(seconds, 1),
        "target": target,
        "compiler_options": json.loads(compiler_options or "{}"),
    }


def compilation_xcoms(result: dict[str, Any]) -> dict[str, Any]:
    """Every XCom the compile task pushes for `result`, in the order its resume pushes them."""
    return {**{key: result[key] for key in DOWNSTREAM_KEYS}, "return_value": result}


def stop_compilation(client: Any, job_name: str) -> bool:
    """StopCompilationJob if the job is still starting or running; True when a stop was sent."""
    try:
        status = client.describe_compilation_job(CompilationJobName=job_name)["CompilationJobStatus"]
    except client.exceptions.ResourceNotFound:
        return False
    if status not in ("INPROGRESS", "STARTING"):
        return False
    client.stop_compilation_job(CompilationJobName=job_name)
    return True
