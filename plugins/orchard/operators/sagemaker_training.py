"""SageMakerTrainingOperator made retry-safe, with the job log after deferral and a wait sized to MaxRuntime.

See `orchard.operators.sagemaker_job_retry` for what differs from the provider's operator and why.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator, serialize

from orchard.operators.sagemaker_job_retry import (
    RUNNING_STATES,
    attempt_name,
    check_outcome,
    latest_attempt,
    print_job_log,
    remember_task_instance,
    stop_on_a_persons_action,
    wait_budget,
)
from orchard.triggers.sagemaker_job import OrchardSageMakerTrigger

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class OrchardSageMakerTrainingOperator(SageMakerTrainingOperator):
    """A deferrable training job that a task retry finds (or resumes) instead of duplicating.

    :param check_interval: seconds between polls; may be a template such as "{{ params.poll_seconds }}".
    Returns `{"Training": <DescribeTrainingJob>}` as the provider's operator does.
    """

    template_fields = (*SageMakerTrainingOperator.template_fields, "check_interval")

    def __init__(self, *, check_interval: int | str = 60, **kwargs: Any):
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("print_log", True)
        super().__init__(check_interval=check_interval, check_if_job_exists=False, **kwargs)  # type: ignore[arg-type]

    def execute(self, context: Any) -> dict:
        self.check_interval = int(self.check_interval)
        remember_task_instance(self, context)
        self.preprocess_config()
        base = self.config["TrainingJobName"]
        attempt, description = latest_attempt(base, self.hook.describe_training_job)
        if description and description["TrainingJobStatus"] == "Completed":
            self.log.info(
                "training job %s already completed (an earlier try started it)",
                description["TrainingJobName"],
            )
            return {"Training": serialize(description)}
        if description and description["TrainingJobStatus"] in RUNNING_STATES:
            self.log.info(
                "waiting on training job %s, started by an earlier try", description["TrainingJobName"]
            )
            self._orchard_job = description["TrainingJobName"]
            return self._wait(description["TrainingJobName"])
        if description:
            self.log.info(
                "training job %s ended %s: starting %s, which resumes from the shared checkpoints",
                description["TrainingJobName"],
                description["TrainingJobStatus"],
                attempt_name(base, attempt + 1),
            )
        self.config["TrainingJobName"] = attempt_name(base, attempt + 1)
        # The client call, not SageMakerHook.create_training_job: the hook first HEADs each input bucket,
        # which needs s3:ListBucket on the whole bucket; the pipeline's role may list only its own prefixes
        # (include/iam/<dag_id>.json), and SageMaker checks the inputs itself when the job starts.
        self._orchard_job = self.config["TrainingJobName"]
        self.hook.conn.create_training_job(**self.config)
        self.log.info("started SageMaker training job %s", self.config["TrainingJobName"])
        return self._wait(self.config["TrainingJobName"])

    def _wait(self, job_name: str) -> dict:
        if not (self.deferrable and self.wait_for_completion):
            return self.serialize_result(job_name)
        attempts, seconds = wait_budget(self.config.get("StoppingCondition"), self.check_interval)
        self.defer(
            timeout=datetime.timedelta(seconds=seconds),
            trigger=OrchardSageMakerTrigger(
                job_name=job_name,
                job_type="Training",
                waiter_delay=self.check_interval,
                waiter_max_attempts=attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
        )
        return {}  # not reached: defer() raises

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        job_name = (event or {}).get("job_name") or self.config.get("TrainingJobName", "")
        if self.print_log and job_name:
            print_job_log(self, TRAINING_LOG_GROUP, job_name)
        if job_name:  # Failed with an input error: InputError; Stopped: a failure (the waiter says success)
            check_outcome("Training", self.hook.describe_training_job(job_name))
        return super().execute_complete(context, event)

    def on_kill(self) -> None:
        """Stop the job on a person's action, never on a worker's graceful shutdown."""
        stop_on_a_persons_action(self, "Training")
