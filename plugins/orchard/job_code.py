"""Job code that AWS runs from S3: where the deploy step puts it, and the check that it is there.

Job code reaches AWS in two ways only, never read from the Airflow machine's disk:

* **images** built from ``include/<name>/Dockerfile`` (``Settings.image_uri``);
* **source in S3**, uploaded by ONE deploy step outside Airflow: ``make deploy``
  (``python -m deploy job-code``), which the local stack and the e2e tests run too.

The source layout is a function of the settings (``artifacts_bucket``, ``image_tag``) alone, so the DAGs
compute the same URIs the deploy step wrote, with no disk read::

    s3://<artifacts_bucket>/job-code/<image_tag>/<name>/files/<file>        each file of include/<name>/
    s3://<artifacts_bucket>/job-code/<image_tag>/<name>/sourcedir.tar.gz    script mode (SageMaker)
    s3://<artifacts_bucket>/job-code/<image_tag>/<name>/manifest.json       written last: files, sha256

``check_deployed`` is for each DAG's input-validation task: it fails before anything billable starts,
naming the deploy command, when the code of this ``image_tag`` was never deployed (or only in part).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchard.settings import Settings

PREFIX = "job-code"
MANIFEST = "manifest.json"
SOURCEDIR = "sourcedir.tar.gz"
DEPLOY_COMMAND = "make deploy"


@dataclass(frozen=True)
class Package:
    """A folder of include/ that AWS runs from S3: the files a DAG names, and whether it is script mode."""

    name: str
    required: tuple[str, ...]
    sourcedir: bool = False


PACKAGES: dict[str, Package] = {
    # SageMaker script mode (sagemaker_submit_directory) + the processing job's code input.
    "aerial_pretraining": Package(
        "aerial_pretraining",
        ("prepare_dataset.py", "train.py", "probe.py", "requirements.txt"),
        sourcedir=True,
    ),
    # EMR: the bootstrap action's script and spark-submit's main file and --py-files.
    "fruit_features": Package("fruit_features", ("bootstrap.sh", "extract_features.py", "image_model.py")),
}


class JobCodeNotDeployed(RuntimeError):
    """The job code a run needs is not in S3 (or not all of it): run the deploy step."""


def key_prefix(image_tag: str, name: str) -> str:
    """``job-code/<image_tag>/<name>/``: the key prefix of one package (no bucket)."""
    if name not in PACKAGES:
        raise KeyError(f"{name!r} is not a job-code package; known: {', '.join(sorted(PACKAGES))}")
    return f"{PREFIX}/{image_tag}/{name}/"


def prefix_uri(settings: Settings, name: str) -> str:
    return f"s3://{settings.artifacts_bucket}/{key_prefix(settings.image_tag, name)}"


def files_uri(settings: Settings, name: str) -> str:
    """The S3 prefix holding the package's files one by one (e.g. a processing job's code input)."""
    return f"{prefix_uri(settings, name)}files/"


def file_uri(settings: Settings, name: str, file: str) -> str:
    return f"{files_uri(settings, name)}{file}"


def sourcedir_uri(settings: Settings, name: str) -> str:
    """The package as ``sourcedir.tar.gz`` (files at the archive's root), for SageMaker script mode."""
    return f"{prefix_uri(settings, name)}{SOURCEDIR}"


def manifest_uri(settings: Settings, name: str) -> str:
    return f"{prefix_uri(settings, name)}{MANIFEST}"


def deploy_hint(settings: Settings) -> str:
    return (
        f"run `{DEPLOY_COMMAND}` (= python -m deploy job-code --bucket {settings.artifacts_bucket} "
        f"--image-tag {settings.image_tag}) from a checkout of this release, then trigger the run again"
    )


def check_deployed(s3: Any, settings: Settings, name: str) -> dict[str, Any]:
    """The package's manifest, after checking that it and every object a DAG names are in S3.

    ``s3`` is a boto3 S3 client. Raises ``JobCodeNotDeployed`` with the missing URIs and the deploy command.
    """
    package = PACKAGES[name]
    bucket, prefix = settings.artifacts_bucket, key_prefix(settings.image_tag, name)
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}{MANIFEST}")["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise JobCodeNotDeployed(
            f"job code {name!r} of image_tag {settings.image_tag!r} is not deployed: "
            f"{manifest_uri(settings, name)} does not exist. {deploy_hint(settings)}."
        ) from None
    except s3.exceptions.NoSuchBucket:
        raise JobCodeNotDeployed(
            f"job code {name!r}: the artifacts bucket {bucket!r} does not exist. Create it, then "
            f"{deploy_hint(settings)}."
        ) from None
    manifest = json.loads(body)
    wanted = [f"files/{file}" for file in package.required] + ([SOURCEDIR] if package.sourcedir else [])
    listed = set(manifest.get("objects", {}))
    missing = [f"s3://{bucket}/{prefix}{key}" for key in wanted if key not in listed]
    for key in wanted:
        if key in listed and not _exists(s3, bucket, f"{prefix}{key}"):
            missing.append(f"s3://{bucket}/{prefix}{key}")
    if missing:
        raise JobCodeNotDeployed(
            f"job code {name!r} of image_tag {settings.image_tag!r} is incomplete in S3: missing "
            f"{', '.join(missing)}. {deploy_hint(settings)}."
        )
    return manifest


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
