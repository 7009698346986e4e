"""SageMaker Ground Truth labeling jobs, which moto lacks: create / describe / stop / list.

No human works in the sandbox, and it never pretends one did. A bounding-box verification or adjustment
job completes under an explicit AUTO-ACCEPT POLICY: every pre-label of the input manifest is accepted
as it is — verification answers `good` for each image, adjustment returns the boxes unadjusted — with
`human-annotated: "no"` in every output line, and the policy's text next to the output manifest
(`<output>/<job>/annotations/auto-accept-policy.txt`) so that run reports can state it.
Output follows Ground Truth's layout: `<S3OutputPath>/<job>/manifests/output/output.manifest`.
Other task types (drawing boxes from nothing) cannot be auto-accepted: such a job ends Failed, saying so.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.s3.models import s3_backends
from moto.sagemaker import responses as moto_sm_responses
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError

from local_aws import s3io

AUTO_ACCEPT_POLICY = (
    "Sandbox auto-accept policy: no human saw these images. The local AWS sandbox completed labeling job "
    "{job} by accepting every pre-label as it was ({mode}); each output line says human-annotated: no."
)
MAX_TASK_AVAILABILITY_S = 30 * 24 * 3600  # private and vendor workforces: up to 30 days
MAX_TASK_TIME_LIMIT_S = 8 * 3600
# Seconds a job stays InProgress before its auto-accepted output appears (so waits really wait).
WORK_SECONDS = 1.0


class LabelingJob:
    def __init__(self, request: dict[str, Any], account_id: str, region: str):
        self.request = request
        self.name = request["LabelingJobName"]
        self.arn = f"arn:aws:sagemaker:{region}:{account_id}:labeling-job/{self.name.lower()}"
        self.account_id = account_id
        self.status = "InProgress"
        self.failure_reason: str | None = None
        self.created = self.modified = utcnow()
        self.counters = {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 0,
        }
        self.output: dict[str, str] | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._work, daemon=True, name=f"labeling-{self.name}").start()

    def stop(self) -> None:
        if self.status == "InProgress":
            self.status, self.modified = "Stopping", utcnow()
            self._stop.set()

    def _work(self) -> None:
        if self._stop.wait(WORK_SECONDS):
            self.status, self.modified = "Stopped", utcnow()
            return
        try:
            self._auto_accept()
            self.status = "Completed"
        except Exception as error:
            self.failure_reason = f"ClientError: {error}"[:1024]
            self.status = "Failed"
        self.modified = utcnow()

    def _auto_accept(self) -> None:
        mode = task_mode(self.request["HumanTaskConfig"]["PreHumanTaskLambdaArn"])
        categories = json.loads(self._get(self.request["LabelCategoryConfigS3Uri"]))
        source = categories.get("auditLabelAttributeName")
        if not source:
            raise ValueError(
                "the label category configuration names no auditLabelAttributeName: a verification "
                "or adjustment job must name the attribute that holds the labels to check"
            )
        attribute = self.request["LabelAttributeName"]
        manifest = self._get(
            self.request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
        ).decode()
        lines = [json.loads(line) for line in manifest.splitlines() if line.strip()]
        now = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")
        output = [self._accepted(line, mode, source, attribute, categories, now) for line in lines]
        base = f"{self.request['OutputConfig']['S3OutputPath'].rstrip('/')}/{self.name}"
        manifest_uri = f"{base}/manifests/output/output.manifest"
        self._put(manifest_uri, "".join(json.dumps(line) + "\n" for line in output))
        self._put(
            f"{base}/annotations/auto-accept-policy.txt", AUTO_ACCEPT_POLICY.format(job=self.name, mode=mode)
        )
        self.output = {"OutputDatasetS3Uri": manifest_uri}
        self.counters.update(TotalLabeled=len(output), MachineLabeled=len(output))

    def _accepted(
        self, line: dict, mode: str, source: str, attribute: str, categories: dict, now: str
    ) -> dict:
        if source not in line:
            raise ValueError(
                f"{line.get('source-ref')}: the input line has no {source!r} attribute to {mode}"
            )
        job_name = f"labeling-job/{self.name}"
        if mode == "verify":
            labels = [entry["label"] for entry in categories.get("labels", [])]
            grade = "good" if "good" in labels else labels[0]
            metadata = {
                "class-name": grade,
                "confidence": 0.0,
                "type": "groundtruth/label",
                "job-name": job_name,
                "human-annotated": "no",
                "creation-date": now,
                "worker-feedback": [],
            }
            return {**line, attribute: labels.index(grade), f"{attribute}-metadata": metadata}
        metadata = {
            **line[f"{source}-metadata"],
            "job-name": job_name,
            "human-annotated": "no",
            "creation-date": now,
            "adjustment-status": "unadjusted",
        }
        return {**line, attribute: line[source], f"{attribute}-metadata": metadata}

    def _get(self, uri: str) -> bytes:
        bucket, key = s3io.split_uri(uri)
        return s3_backends[self.account_id]["aws"].get_object(bucket, key).value

    def _put(self, uri: str, body: str) -> None:
        bucket, key = s3io.split_uri(uri)
        s3_backends[self.account_id]["aws"].put_object(bucket, key, body.encode())

    def describe(self) -> dict[str, Any]:
        request = self.request
        response = {
            "LabelingJobName": self.name,
            "LabelingJobArn": self.arn,
            "LabelingJobStatus": self.status,
            "LabelCounters": dict(self.counters),
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "JobReferenceCode": self.name,
            "LabelAttributeName": request["LabelAttributeName"],
            "InputConfig": request["InputConfig"],
            "OutputConfig": request["OutputConfig"],
            "RoleArn": request["RoleArn"],
            "HumanTaskConfig": request["HumanTaskConfig"],
        }
        for key in ("LabelCategoryConfigS3Uri", "StoppingConditions", "Tags"):
            if key in request:
                response[key] = request[key]
        if self.failure_reason:
            response["FailureReason"] = self.failure_reason
        if self.output:
            response["LabelingJobOutput"] = self.output
        return response


def task_mode(pre_lambda_arn: str) -> str:
    function = pre_lambda_arn.rsplit(":", 1)[-1]
    if function.endswith("VerificationBoundingBox"):
        return "verify"
    if function.endswith("AdjustmentBoundingBox"):
        return "adjust"
    raise ValueError(
        f"{function}: the sandbox completes only bounding-box verification and adjustment jobs "
        "(their pre-labels can be auto-accepted); a job that needs boxes drawn from nothing cannot"
    )


def _validate(request: dict[str, Any]) -> None:
    for key in (
        "LabelingJobName",
        "LabelAttributeName",
        "InputConfig",
        "OutputConfig",
        "RoleArn",
        "HumanTaskConfig",
    ):
        if key not in request:
            raise ValidationError(
                message=f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: "
                "Member must not be null"
            )
    task = request["HumanTaskConfig"]
    for key in (
        "WorkteamArn",
        "UiConfig",
        "PreHumanTaskLambdaArn",
        "TaskTitle",
        "TaskDescription",
        "NumberOfHumanWorkersPerDataObject",
        "TaskTimeLimitInSeconds",
        "AnnotationConsolidationConfig",
    ):
        if key not in task:
            raise ValidationError(message=f"HumanTaskConfig.{key} is required")
    availability = task.get("TaskAvailabilityLifetimeInSeconds", 864000)
    if not 60 <= availability <= MAX_TASK_AVAILABILITY_S:
        raise ValidationError(
            message=f"TaskAvailabilityLifetimeInSeconds {availability} is outside 60..{MAX_TASK_AVAILABILITY_S}"
        )
    if not 30 <= task["TaskTimeLimitInSeconds"] <= MAX_TASK_TIME_LIMIT_S:
        raise ValidationError(
            message=f"TaskTimeLimitInSeconds {task['TaskTimeLimitInSeconds']} is outside 30..{MAX_TASK_TIME_LIMIT_S}"
        )


def _jobs(backend: Any) -> dict[str, LabelingJob]:
    if not hasattr(backend, "labeling_jobs"):
        backend.labeling_jobs = {}
    return backend.labeling_jobs


def create_labeling_job(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    request = json.loads(self.body)
    _validate(request)
    jobs = _jobs(self.sagemaker_backend)
    if request["LabelingJobName"] in jobs:
        raise ResourceInUseException(
            message=f"A labeling job named {request['LabelingJobName']} already exists"
        )
    job = LabelingJob(request, self.current_account, self.region)
    jobs[job.name] = job
    job.start()
    return ActionResult({"LabelingJobArn": job.arn})


def _job(self: moto_sm_responses.SageMakerResponse) -> LabelingJob:
    name = self._get_param("LabelingJobName")
    job = _jobs(self.sagemaker_backend).get(name)
    if job is None:
        raise ResourceNotFound(message=f"Could not find labeling job {name!r}")
    return job


def describe_labeling_job(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    return ActionResult(_job(self).describe())


def stop_labeling_job(self: moto_sm_responses.SageMakerResponse) -> EmptyResult:
    _job(self).stop()
    return EmptyResult()


def list_labeling_jobs(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    status = self._get_param("StatusEquals")
    contains = self._get_param("NameContains")
    summaries = [
        {
            k: v
            for k, v in job.describe().items()
            if k
            in (
                "LabelingJobName",
                "LabelingJobArn",
                "CreationTime",
                "LastModifiedTime",
                "LabelingJobStatus",
                "LabelCounters",
                "LabelingJobOutput",
                "FailureReason",
                "InputConfig",
            )
        }
        for job in _jobs(self.sagemaker_backend).values()
        if (not status or job.status == status) and (not contains or contains in job.name)
    ]
    return ActionResult(
        {"LabelingJobSummaryList": sorted(summaries, key=lambda s: s["CreationTime"], reverse=True)}
    )


def install() -> None:
    responses = moto_sm_responses.SageMakerResponse
    responses.create_labeling_job = create_labeling_job
    responses.describe_labeling_job = describe_labeling_job
    responses.stop_labeling_job = stop_labeling_job
    responses.list_labeling_jobs = list_labeling_jobs
