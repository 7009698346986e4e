"""The inputs checked before any job: the trigger form's values, and the S3 objects the jobs will read."""

from __future__ import annotations

from typing import Any

from orchard.aerial_pretraining.instances import GPUS
from orchard.errors import InputError

# BigEarthNet's split lists and the exclusion lists the prepare job reads beside the patch folders.
LISTINGS = (
    "train.csv",
    "val.csv",
    "test.csv",
    "patches_with_seasonal_snow.csv",
    "patches_with_cloud_and_shadow.csv",
)
SPLITS = ("train", "val", "test")


def folder_uri(uri: str) -> str:
    """An S3 URI that means a folder, with exactly one trailing `/`: the one place aerial_pretraining turns a
    prefix param into a folder, so `.../bigearthnet-s2` never also reads `.../bigearthnet-s2-old/` (S3
    prefixes match any key that starts with them)."""
    return uri.strip().rstrip("/") + "/"


def parameter_problems(params: dict) -> list[str]:
    problems = []
    if params["use_spot_instances"] and params["spot_max_wait_hours"] < params["max_runtime_hours"]:
        problems.append(
            f"spot_max_wait_hours ({params['spot_max_wait_hours']}) must be >= max_runtime_hours ({params['max_runtime_hours']})"
        )
    if params["global_crop_size"] % params["patch_size"] or params["local_crop_size"] % params["patch_size"]:
        problems.append(
            f"crop sizes ({params['global_crop_size']}, {params['local_crop_size']}) must be multiples of patch_size {params['patch_size']}"
        )
    if params["probe_image_size"] % params["patch_size"]:
        problems.append(
            f"probe_image_size {params['probe_image_size']} must be a multiple of patch_size {params['patch_size']}"
        )
    if params["arch"] == "vit_demo" and GPUS.get(params["pretrain_instance_type"], 0):
        problems.append("arch vit_demo is the CPU demo model: pick vit_small (or larger) for GPU instances")
    return problems


def check_inputs(params: dict, s3: Any, settings: Any) -> None:
    """Everything checkable without a job, each problem named: params, the split / exclusion lists, the
    baseline checkpoint, the deployed job code. `s3` is a boto3 S3 client; raises InputError listing them all.

    The objects are checked at once (a thread each: the task waits for the slowest check, not for the sum of
    some ten round trips); the problems are listed in the same order whichever answers first.
    """
    from concurrent.futures import ThreadPoolExecutor

    raw = folder_uri(params["raw_dataset_uri"])
    with ThreadPoolExecutor(max_workers=len(LISTINGS) + 2) as pool:
        listings = [pool.submit(_listing_problems, s3, raw, listing) for listing in LISTINGS]
        baseline = pool.submit(_baseline_problems, s3, params["baseline_checkpoint_uri"])
        deployed = pool.submit(_deployment_problems, s3, settings)
        problems = parameter_problems(params) + [
            problem for listing in listings for problem in listing.result()
        ]
        problems += baseline.result() + deployed.result()
    if problems:
        raise InputError("aerial_pretraining cannot start:\n- " + "\n- ".join(problems))


def _exists(s3: Any, uri: str) -> bool:
    """HeadObject: False on 404 (no such key), any other error raised (a 403 is not "missing")."""
    from botocore.exceptions import ClientError

    from orchard.aerial_pretraining.evaluation import split_s3_uri

    bucket, key = split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _listing_problems(s3: Any, raw: str, listing: str) -> list[str]:
    from orchard.aerial_pretraining.evaluation import split_s3_uri

    if not _exists(s3, raw + listing):
        return [
            f"missing {raw}{listing} (BigEarthNet's split / exclusion list): upload it beside the patch folders"
        ]
    if listing.startswith(SPLITS):
        bucket, key = split_s3_uri(raw + listing)
        if not s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().strip():
            return [f"empty split list {raw}{listing}: add patches to it"]
    return []


def _baseline_problems(s3: Any, uri: str) -> list[str]:
    from orchard.aerial_pretraining.evaluation import split_s3_uri

    try:
        return [] if _exists(s3, uri) else [f"baseline checkpoint {uri} does not exist"]
    except Exception as error:  # 403: outside what the pipeline's role may read
        if "403" not in str(error) and "AccessDenied" not in str(error):
            raise
        bucket, _ = split_s3_uri(uri)
        return [
            f"baseline checkpoint {uri} is not readable by the pipeline's role "
            f"(include/iam/aerial_pretraining.json): put it under s3://{bucket}/aerial_pretraining/"
        ]


def _deployment_problems(s3: Any, settings: Any) -> list[str]:
    from orchard.job_code import JobCodeNotDeployed, check_deployed

    try:
        check_deployed(s3, settings, "aerial_pretraining")
    except JobCodeNotDeployed as error:
        return [str(error)]
    return []
