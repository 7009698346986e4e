"""Ground Truth labeling jobs for bounding-box verification or adjustment.

The provider has no labeling-job support. This hook knows the built-in task types' Lambda functions
(AWS's pre-annotation PRE-* and annotation-consolidation ACS-* functions live in one AWS account per
region, listed in the CreateLabelingJob reference: HumanTaskConfig.PreHumanTaskLambdaArn and
AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn) and a custom waiter for the job's end.
"""

from __future__ import annotations

from pathlib import Path

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

# Region → the AWS account that owns Ground Truth's built-in Lambda functions there
# (AWS SageMaker API reference, CreateLabelingJob / HumanTaskConfig, checked 2026-11).
GROUND_TRUTH_LAMBDA_ACCOUNTS = {
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
TASK_FUNCTIONS = {"verify": "VerificationBoundingBox", "adjust": "AdjustmentBoundingBox"}
MAX_TASK_AVAILABILITY_S = 30 * 24 * 3600  # private / vendor workforces: up to 30 days


def task_lambda_arns(mode: str, region: str) -> dict[str, str]:
    """The PRE-/ACS- function ARNs of a verification (`verify`) or adjustment (`adjust`) job in `region`."""
    if mode not in TASK_FUNCTIONS:
        raise ValueError(f"labeling mode {mode!r} is not one of {', '.join(TASK_FUNCTIONS)}")
    account = GROUND_TRUTH_LAMBDA_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(
            f"Ground Truth's built-in task functions are not listed for {region}: run labeling in one of "
            f"{', '.join(sorted(GROUND_TRUTH_LAMBDA_ACCOUNTS))}, or stop at the manifest (param stop_at_manifest)"
        )
    function = TASK_FUNCTIONS[mode]
    prefix = f"arn:aws:lambda:{region}:{account}:function"
    return {"pre": f"{prefix}:PRE-{function}", "consolidation": f"{prefix}:ACS-{function}"}


class LabelingJobHook(SageMakerHook):
    """SageMakerHook plus the `labeling_job_complete` waiter (botocore has no labeling-job waiter).

    The waiter fails on Completed's opposites (Failed, Stopped) and on the error `ResourceNotFound`, which
    DescribeLabelingJob answers for a job it does not know
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeLabelingJob.html, Errors):
    a vanished job ends the wait on its first poll, naming the job."""

    @property
    def waiter_path(self) -> Path:
        return Path(__file__).resolve().parent.parent / "waiters" / "sagemaker_labeling.json"
