"""SageMaker Ground Truth labeling jobs, which moto lacks: create / describe / stop / list.

No human works in the sandbox, and it never pretends one did. A bounding-box verification or adjustment
job completes under an explicit AUTO-ACCEPT POLICY: every pre-label of the input manifest is accepted
as it is — verification answers `good` for each image, adjustment returns the boxes unadjusted — with
`human-annotated: "no"` in every output line, and the policy's text next to the output manifest
(`<output>/<job>/annotations/auto-accept-policy.txt`) so that run reports can state it.
Output follows Ground Truth's layout: `<S3OutputPath>/<job>/manifests/output/output.manifest`.
Other task types (drawing boxes from nothing) cannot be auto-accepted: such a job ends Failed, saying so.

What Ground Truth refuses, the sandbox refuses (docs/sandbox.md, "## 9. Ground Truth"):
- CreateLabelingJob in a region without Ground Truth (its built-in PRE-/ACS- task functions are published
  for these regions only: CreateLabelingJob API reference, HumanTaskConfig.PreHumanTaskLambdaArn,
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HumanTaskConfig.html), or with task
  functions of another region / account;
- a WorkteamArn of a private workteam that does not exist (moto has no workteams: CreateWorkteam,
  DescribeWorkteam, ListWorkteams, DeleteWorkteam are served here);
- input images in a bucket without the CORS rule Ground Truth needs ("CORS Requirement for Input Image
  Data", https://docs.aws.amazon.com/sagemaker/latest/dg/sms-cors-update.html: "If you do not add a CORS
  configuration to the Amazon S3 buckets that contain your input data, labeling tasks for those input data
  objects will fail"): the job ends Failed naming the bucket;
- a verification or adjustment job whose label category file lacks the original job's labels (the
  manifest's class-map), or a verification job whose template is not a `crowd-image-classifier` with the
  pre-labels as its `overlay` ("Start a label verification or adjustment job (API)",
  https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-verify-start-api.html).
"""

from __future__ import annotations

import json
import re
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
# Region → the AWS account of Ground Truth's built-in PRE-/ACS- Lambda functions there (API_HumanTaskConfig,
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HumanTaskConfig.html). A region not listed
# has no Ground Truth (eu-west-3, Paris, among them).
GROUND_TRUTH_REGIONS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
# The public (Amazon Mechanical Turk) workforce's team exists in every Ground Truth region, in AWS's account.
PUBLIC_WORKTEAM = re.compile(r"arn:aws:sagemaker:[a-z0-9-]+:394669845002:workteam/public-crowd/default")


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
        template = self._get(self.request["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"]).decode()
        source = categories.get("auditLabelAttributeName") or _template_source(template)
        if not source:
            raise ValueError(
                "the worker template shows no pre-labels (no task.input.manifestLine.<attribute>) and the "
                "label category configuration names no auditLabelAttributeName: a verification or "
                "adjustment job must show the labels to check"
            )
        grades = _verification_grades(template) if mode == "verify" else []
        attribute = self.request["LabelAttributeName"]
        manifest = self._get(
            self.request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
        ).decode()
        lines = [json.loads(line) for line in manifest.splitlines() if line.strip()]
        _check_original_labels(lines, source, categories)
        _check_cors(self.account_id, lines)
        now = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")
        output = [self._accepted(line, mode, source, attribute, grades, now) for line in lines]
        base = f"{self.request['OutputConfig']['S3OutputPath'].rstrip('/')}/{self.name}"
        manifest_uri = f"{base}/manifests/output/output.manifest"
        self._put(manifest_uri, "".join(json.dumps(line) + "\n" for line in output))
        self._put(
            f"{base}/annotations/auto-accept-policy.txt", AUTO_ACCEPT_POLICY.format(job=self.name, mode=mode)
        )
        self.output = {"OutputDatasetS3Uri": manifest_uri}
        self.counters.update(TotalLabeled=len(output), MachineLabeled=len(output))

    def _accepted(self, line: dict, mode: str, source: str, attribute: str, grades: list, now: str) -> dict:
        if source not in line:
            raise ValueError(
                f"{line.get('source-ref')}: the input line has no {source!r} attribute to {mode}"
            )
        job_name = f"labeling-job/{self.name}"
        if mode == "verify":
            labels = grades
            grade = labels[0]  # the template's first grade: the one that accepts the boxes
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


def _template_source(template: str) -> str:
    """The manifest attribute whose labels the worker template shows (task.input.manifestLine.<attr>)."""
    found = re.search(r"task\.input\.manifestLine\.([A-Za-z0-9_.-]+?)\.annotations", template)
    return found.group(1) if found else ""


def _verification_grades(template: str) -> list[str]:
    """A bounding-box verification template's grades: a crowd-image-classifier whose `overlay` shows the
    boxes ("crowd-image-classifier": the overlay "is for verification workflows of bounding-box ...
    tasks", https://docs.aws.amazon.com/sagemaker/latest/dg/sms-ui-template-crowd-image-classifier.html)."""
    element = re.search(r"<crowd-image-classifier\b(.*?)>", template, re.S)
    if not element or "overlay=" not in element.group(1) or "boundingBox" not in element.group(1):
        raise ValueError(
            "a bounding-box verification job's worker template must be a crowd-image-classifier whose "
            'overlay shows the boxes to verify (overlay="{ boundingBox: {labels, value} }"); a '
            "crowd-bounding-box template lets workers change the boxes: that is an adjustment job"
        )
    categories = re.search(r"categories=\"\[(.*?)\]\"", element.group(1), re.S)
    grades = re.findall(r"'([^']+)'|\"([^\"]+)\"", categories.group(1)) if categories else []
    grades = [a or b for a, b in grades]
    if not grades:
        raise ValueError("the verification template's crowd-image-classifier has no categories (the grades)")
    return grades


def _check_original_labels(lines: list[dict], source: str, categories: dict) -> None:
    """The label category file "must contain the same labels used in the original labeling job"
    (https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-verify-start-api.html)."""
    labels = {entry.get("label") for entry in categories.get("labels", [])}
    for line in lines:
        if source not in line:
            raise ValueError(f"{line.get('source-ref')}: the input line has no {source!r} attribute to check")
        original = set(line.get(f"{source}-metadata", {}).get("class-map", {}).values())
        missing = sorted(original - labels)
        if missing:
            raise ValueError(
                f"the label category configuration lacks {missing}, labels of the original job "
                f"({source!r} class-map of {line.get('source-ref')}): a verification or adjustment job's "
                "LabelCategoryConfigS3Uri must contain the original job's labels"
            )


def _check_cors(account_id: str, lines: list[dict]) -> None:
    """Every bucket holding input images needs a CORS rule allowing GET from any origin."""
    backend = s3_backends[account_id]["aws"]
    for bucket_name in sorted({s3io.split_uri(line["source-ref"])[0] for line in lines}):
        bucket = backend.get_bucket(bucket_name)
        if not any(
            "GET" in rule.allowed_methods and "*" in rule.allowed_origins for rule in (bucket.cors or [])
        ):
            raise ValueError(
                f"input images in s3://{bucket_name} cannot be shown to workers: the bucket has no CORS rule "
                'allowing GET from origin * (Ground Truth: "CORS Requirement for Input Image Data", '
                "https://docs.aws.amazon.com/sagemaker/latest/dg/sms-cors-update.html)"
            )


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


def _validate_ground_truth(request: dict[str, Any], backend: Any, region: str) -> None:
    """Ground Truth in this region, its task functions of this region, and an existing workteam."""
    account = GROUND_TRUTH_REGIONS.get(region)
    if account is None:
        raise ValidationError(
            message=f"Ground Truth is not available in {region}: create labeling jobs in one of "
            f"{', '.join(sorted(GROUND_TRUTH_REGIONS))}"
        )
    task = request["HumanTaskConfig"]
    for name, arn in (
        ("PreHumanTaskLambdaArn", task["PreHumanTaskLambdaArn"]),
        (
            "AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn",
            task["AnnotationConsolidationConfig"].get("AnnotationConsolidationLambdaArn", ""),
        ),
    ):
        prefix = f"arn:aws:lambda:{region}:{account}:function:"
        if not arn.startswith(prefix):
            raise ValidationError(
                message=f"HumanTaskConfig.{name} {arn} is not one of Ground Truth's built-in functions of "
                f"{region} ({prefix}PRE-/ACS-<task type>)"
            )
    workteam = task["WorkteamArn"]
    if PUBLIC_WORKTEAM.fullmatch(workteam) and workteam.split(":")[3] == region:
        return
    if workteam not in {team["WorkteamArn"] for team in _workteams(backend).values()}:
        raise ValidationError(
            message=f"Workteam {workteam} does not exist (DescribeWorkteam finds no such team)"
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
    _validate_ground_truth(request, self.sagemaker_backend, self.region)
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


# ------------------------------------------------------------------------------------- workteams
# moto has none. CreateWorkteam / DescribeWorkteam / ListWorkteams / DeleteWorkteam, private teams only
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateWorkteam.html).


def _workteams(backend: Any) -> dict[str, dict[str, Any]]:
    if not hasattr(backend, "orchard_workteams"):
        backend.orchard_workteams = {}
    return backend.orchard_workteams


def create_workteam(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    request = json.loads(self.body)
    for key in ("WorkteamName", "MemberDefinitions", "Description"):
        if not request.get(key):
            raise ValidationError(
                message=f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: "
                "Member must not be null"
            )
    teams = _workteams(self.sagemaker_backend)
    name = request["WorkteamName"]
    if name in teams:
        raise ResourceInUseException(message=f"Workteam {name} already exists")
    now = utcnow()
    arn = f"arn:aws:sagemaker:{self.region}:{self.current_account}:workteam/private-crowd/{name}"
    teams[name] = {
        "WorkteamName": name,
        "MemberDefinitions": request["MemberDefinitions"],
        "WorkteamArn": arn,
        "WorkforceArn": f"arn:aws:sagemaker:{self.region}:{self.current_account}:workforce/"
        + request.get("WorkforceName", "default"),
        "Description": request["Description"],
        "SubDomain": f"{name}.labeling.{self.region}.sagemaker.aws",
        "CreateDate": now,
        "LastUpdatedDate": now,
    }
    return ActionResult({"WorkteamArn": arn})


def describe_workteam(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    name = self._get_param("WorkteamName")
    team = _workteams(self.sagemaker_backend).get(name)
    if team is None:
        raise ValidationError(message=f"Workteam {name} does not exist")
    return ActionResult({"Workteam": team})


def list_workteams(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    contains = self._get_param("NameContains")
    teams = [
        t
        for t in _workteams(self.sagemaker_backend).values()
        if not contains or contains in t["WorkteamName"]
    ]
    return ActionResult({"Workteams": sorted(teams, key=lambda t: t["WorkteamName"])})


def delete_workteam(self: moto_sm_responses.SageMakerResponse) -> ActionResult:
    name = self._get_param("WorkteamName")
    if _workteams(self.sagemaker_backend).pop(name, None) is None:
        raise ValidationError(message=f"Workteam {name} does not exist")
    return ActionResult({"Success": True})


def install() -> None:
    responses = moto_sm_responses.SageMakerResponse
    responses.create_workteam = create_workteam
    responses.describe_workteam = describe_workteam
    responses.list_workteams = list_workteams
    responses.delete_workteam = delete_workteam
    responses.create_labeling_job = create_labeling_job
    responses.describe_labeling_job = describe_labeling_job
    responses.stop_labeling_job = stop_labeling_job
    responses.list_labeling_jobs = list_labeling_jobs
