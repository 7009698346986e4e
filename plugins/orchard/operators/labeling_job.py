"""Create a Ground Truth bounding-box verification or adjustment job and wait for it, deferred.

A retry finds the job it already created (same name from orchard.naming) and waits on it. Human work
can take days: the wait is sized from the job's own task availability (up to 30 days), not from the
provider's SageMaker default of about 30 minutes.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from orchard.hooks.labeling_job import MAX_TASK_AVAILABILITY_S, LabelingJobHook, task_lambda_arns
from orchard.triggers.labeling_job import SageMakerLabelingJobTrigger, labeling_result
from orchard.triggers.task_end import may_end_in_trigger
from orchard.waits import polls_covering

TERMINAL = ("Completed", "Failed", "Stopped")
TASK_WORDS = {"verify": "verification", "adjust": "adjustment"}


class SageMakerLabelingJobOperator(AwsBaseOperator[LabelingJobHook]):
    """Bounding-box verification (`mode="verify"`) or adjustment (`mode="adjust"`) of a pre-labeled manifest.

    Returns {job_name, status, output_manifest, label_attribute, counters}.
    """

    aws_hook_class = LabelingJobHook
    template_fields: Sequence[str] = aws_template_fields(
        "job_name",
        "manifest_uri",
        "output_uri",
        "label_categories_uri",
        "ui_template_uri",
        "workteam_arn",
        "role_arn",
        "mode",
        "label_attribute",
        "task_time_limit_s",
        "task_availability_s",
        "workers_per_object",
        "waiter_delay",
    )

    def __init__(
        self,
        *,
        job_name: str,
        manifest_uri: str,
        output_uri: str,
        label_categories_uri: str,
        ui_template_uri: str,
        workteam_arn: str,
        role_arn: str,
        mode: str = "verify",
        label_attribute: str,
        task_time_limit_s: int | str = 600,
        task_availability_s: int | str = 10 * 24 * 3600,
        workers_per_object: int | str = 1,
        title: str = "Check the pre-labeled boxes",
        waiter_delay: int | str = 60,
        deferrable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.job_name, self.manifest_uri, self.output_uri = job_name, manifest_uri, output_uri
        self.label_categories_uri, self.ui_template_uri = label_categories_uri, ui_template_uri
        self.workteam_arn, self.role_arn, self.mode, self.label_attribute = (
            workteam_arn,
            role_arn,
            mode,
            label_attribute,
        )
        self.task_time_limit_s, self.task_availability_s = task_time_limit_s, task_availability_s
        self.workers_per_object, self.title = workers_per_object, title
        self.waiter_delay, self.deferrable = waiter_delay, deferrable

    def request(self) -> dict[str, Any]:
        availability = int(self.task_availability_s)
        if not 60 <= availability <= MAX_TASK_AVAILABILITY_S:
            raise ValueError(
                f"task availability {availability} s must be within 60 s .. 30 days ({MAX_TASK_AVAILABILITY_S} s)"
            )
        arns = task_lambda_arns(self.mode, self.hook.conn_region_name)
        return {
            "LabelingJobName": self.job_name,
            "LabelAttributeName": self.label_attribute,
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": self.manifest_uri}}},
            "OutputConfig": {"S3OutputPath": self.output_uri},
            "RoleArn": self.role_arn,
            "LabelCategoryConfigS3Uri": self.label_categories_uri,
            "HumanTaskConfig": {
                "WorkteamArn": self.workteam_arn,
                "UiConfig": {"UiTemplateS3Uri": self.ui_template_uri},
                "PreHumanTaskLambdaArn": arns["pre"],
                "TaskTitle": self.title,
                "TaskDescription": f"Bounding box {TASK_WORDS[self.mode]} of model pre-labels",
                "TaskKeywords": ["bounding box", "image", "verification"],
                "NumberOfHumanWorkersPerDataObject": int(self.workers_per_object),
                "TaskTimeLimitInSeconds": int(self.task_time_limit_s),
                "TaskAvailabilityLifetimeInSeconds": availability,
                "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": arns["consolidation"]},
            },
        }

    def execute(self, context: Any) -> dict[str, Any]:
        status = self._existing_status()
        if status is None:
            self.log.info("creating labeling job %s (%s mode)", self.job_name, self.mode)
            self.hook.conn.create_labeling_job(**self.request())
        else:
            self.log.info("labeling job %s already exists (%s): waiting on it", self.job_name, status)
        if status in TERMINAL:
            return self._result()
        # Workers may take the whole availability window; the triggerer polls until then, plus a margin.
        max_wait = int(self.task_availability_s) + 3600
        delay = int(self.waiter_delay)  # a template such as "{{ params.poll_seconds }}" renders to text
        attempts = polls_covering(max_wait, delay)
        self.defer(
            trigger=SageMakerLabelingJobTrigger(
                job_name=self.job_name,
                waiter_delay=delay,
                waiter_max_attempts=attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                end_in_trigger=may_end_in_trigger(self),
            ),
            method_name="execute_complete",
            timeout=datetime.timedelta(seconds=max_wait + 600),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or event.get("status") != "success":
            raise RuntimeError(
                f"labeling job {self.job_name} did not complete: {event and event.get('message')}"
            )
        return self._result()

    def _existing_status(self) -> str | None:
        try:
            return self.hook.conn.describe_labeling_job(LabelingJobName=self.job_name)["LabelingJobStatus"]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException"):
                return None
            raise

    def _result(self) -> dict[str, Any]:
        return labeling_result(self.hook.conn, self.job_name)
