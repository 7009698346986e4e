"""The Ground Truth side of a run: its prerequisites checked before anything is billed, the run's labeling
job stopped by name when the run fails, and the job's output read back as the verified dataset.

The job itself is created and awaited by the DAG's `label` operator (orchard.operators.labeling_job).
"""

from __future__ import annotations

import json
from typing import Any

from orchard import aws
from orchard.auto_labeling import manifest
from orchard.auto_labeling.predictions import PRELABEL_ATTRIBUTE
from orchard.auto_labeling.s3_objects import read_text, read_text_if_any, split, write_text
from orchard.errors import InputError

# Ground Truth's CORS rule for input images ("CORS Requirement for Input Image Data",
# https://docs.aws.amazon.com/sagemaker/latest/dg/sms-cors-update.html): without it, tasks fail.
GROUND_TRUTH_CORS = [
    {"AllowedHeaders": [], "AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "ExposeHeaders": []}
]


def check_ground_truth(s3: Any, sagemaker: Any, region: str, params: dict[str, Any], frames_uri: str) -> None:
    """What Ground Truth needs, checked before the endpoint exists rather than after every frame was
    inferred: its task functions in this region, the workteam, and the frames bucket's CORS rule (with the
    task's S3 and SageMaker clients)."""
    from orchard.hooks.labeling_job import task_lambda_arns

    try:
        task_lambda_arns(params["labeling_mode"], region)
    except ValueError as error:
        raise InputError(str(error)) from None
    _check_workteam(sagemaker, params["workteam_arn"], region)
    _check_cors(s3, split(frames_uri)[0])


def _check_workteam(sagemaker: Any, arn: str, region: str) -> None:
    from botocore.exceptions import ClientError

    parts = arn.split(":")
    arn_region, resource = parts[3], parts[5]
    if arn_region != region:
        raise InputError(
            f"workteam_arn {arn} is in {arn_region}, but the labeling job runs in {region}: "
            f"give a workteam of {region}"
        )
    kind, _, name = resource.removeprefix("workteam/").partition("/")
    # the public (Mechanical Turk) and vendor workforces are not yours to describe
    if kind == "private-crowd":
        try:
            sagemaker.describe_workteam(WorkteamName=name)
        except ClientError as error:
            raise InputError(
                f"workteam_arn {arn}: {error.response['Error']['Message']}: create the private workteam "
                "(SageMaker console, Ground Truth > Labeling workforces) or give an existing one"
            ) from None


def _check_cors(s3: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchCORSConfiguration":
            raise InputError(
                f"frames bucket {bucket}: cannot read its CORS configuration "
                f"({error.response['Error']['Code']}): allow s3:GetBucketCors"
            ) from None
        rules = []
    if not any(
        "GET" in rule.get("AllowedMethods", []) and "*" in rule.get("AllowedOrigins", []) for rule in rules
    ):
        raise InputError(
            f"frames bucket {bucket} has no CORS rule allowing GET from any origin: Ground Truth's "
            "workers could not load the frames (https://docs.aws.amazon.com/sagemaker/latest/dg/"
            f"sms-cors-update.html). Add it: aws s3api put-bucket-cors --bucket {bucket} "
            f"--cors-configuration '{json.dumps({'CORSRules': GROUND_TRUTH_CORS})}' "
            "— or set stop_at_manifest"
        )


def stop_labeling_job(plan: dict[str, Any], sagemaker: Any = None) -> str:
    """Stop the run's Ground Truth job (found by its deterministic name) if it is still in progress: a run
    that failed or was stopped must not leave workers labeling (billed per object). Returns its status.
    `sagemaker`: a client on a session the caller holds (the sweep's); none: one of its own.
    StopLabelingJob: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopLabelingJob.html"""
    from botocore.exceptions import ClientError

    name = plan["labeling_job_name"]
    sagemaker = sagemaker or aws.client("sagemaker", conn_id=plan["conn_id"])
    try:
        status = sagemaker.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFound":
            print(f"no labeling job {name}: nothing to stop")
            return "none"
        raise
    if status in ("Initializing", "InProgress"):
        sagemaker.stop_labeling_job(LabelingJobName=name)
        print(f"labeling job {name} was {status}: stopped (StopLabelingJob)")
        return "Stopping"
    print(f"labeling job {name} is {status}: nothing to stop")
    return status


def read_verified(plan: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The job's output manifest → `verified/verified.jsonl` (one record per frame) and its counts; the
    auto-accept policy a job without human workers wrote next to it (the report states it), read while
    the manifest is (one GET that may find nothing, not a HEAD then a GET after the manifest's write)."""
    from concurrent.futures import ThreadPoolExecutor

    s3 = aws.client("s3", conn_id=plan["conn_id"])
    policy_uri = f"{job['output_manifest'].split('/manifests/')[0]}/annotations/auto-accept-policy.txt"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy") as pool:
        policy = pool.submit(read_text_if_any, s3, policy_uri)
        text = read_text(s3, job["output_manifest"])
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        dataset = manifest.verified_dataset(
            lines,
            source_attribute=PRELABEL_ATTRIBUTE,
            verified_attribute=job["label_attribute"],
            mode=plan["mode"],
        )
        verified_uri = f"{plan['base_uri']}verified/verified.jsonl"
        write_text(s3, verified_uri, "".join(json.dumps(r) + "\n" for r in dataset["records"]))
        auto_accept_policy = policy.result() or ""
    return {
        **dataset["counts"],
        "verified_uri": verified_uri,
        "job_name": job["job_name"],
        "output_manifest": job["output_manifest"],
        "auto_accept_policy": auto_accept_policy,
    }
