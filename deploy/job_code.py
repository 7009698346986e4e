"""Pack and upload the job code that AWS runs from S3 (the one deploy step; ``make deploy``).

For each package of ``orchard.job_code.PACKAGES`` (a folder ``include/<name>/``): every file of the folder
(not hidden files, ``__pycache__``, ``*.pyc``, nor the ``Dockerfile``: images are built separately) goes to
``s3://<bucket>/job-code/<image_tag>/<name>/files/<file>``; a script-mode package also becomes
``sourcedir.tar.gz`` (files at the root, reproducible: same files, same bytes); ``manifest.json`` (files,
sha256, sizes) is written last, so a DAG that finds it finds a complete upload.

The bucket and tag default to the settings the DAGs read (``ORCHARD_ARTIFACTS_BUCKET``,
``ORCHARD_IMAGE_TAG``); boto3 finds credentials and the endpoint as usual (``AWS_ENDPOINT_URL`` points
it at the sandbox).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import sys
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
INCLUDE = REPO_ROOT / "include"
SKIPPED = ("Dockerfile",)


class DeployError(RuntimeError):
    """A deploy that cannot work (unknown package, missing folder or file, bucket missing)."""


def _orchard():
    plugins = str(REPO_ROOT / "plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    from orchard import job_code, settings

    return job_code, settings


def package_files(folder: Path) -> list[Path]:
    """The files of a job-code folder that are deployed, sorted by name."""
    if not folder.is_dir():
        raise DeployError(f"{folder} is not a folder of job code")
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and path.suffix != ".pyc"
        and path.name not in SKIPPED
    )


def sourcedir_archive(files: Iterable[Path]) -> bytes:
    """``sourcedir.tar.gz`` with the files at its root; reproducible (fixed mtimes, owners, modes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755 if path.suffix == ".sh" else 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def deploy(
    *,
    bucket: str | None = None,
    image_tag: str | None = None,
    names: Sequence[str] | None = None,
    s3: Any = None,
    include: Path = INCLUDE,
) -> dict[str, dict]:
    """Upload every package (or ``names``); returns each package's manifest."""
    job_code, settings_module = _orchard()
    overrides = {k: v for k, v in (("artifacts_bucket", bucket), ("image_tag", image_tag)) if v}
    try:
        settings = dataclasses.replace(settings_module.load_settings(variables=False), **overrides)
    except ValueError as error:
        raise DeployError(str(error)) from None
    unknown = sorted(set(names or ()) - set(job_code.PACKAGES))
    if unknown:
        raise DeployError(f"unknown package(s) {', '.join(unknown)}; known: {', '.join(job_code.PACKAGES)}")
    s3 = s3 or boto3_client(settings.region)
    deployed = {}
    for name in names or job_code.PACKAGES:
        deployed[name] = _deploy_one(s3, settings, job_code, job_code.PACKAGES[name], include / name)
    return deployed


def boto3_client(region: str) -> Any:
    import boto3

    return boto3.client("s3", region_name=region)


def _deploy_one(s3: Any, settings: Any, job_code: Any, package: Any, folder: Path) -> dict:
    files = package_files(folder)
    names = {path.name for path in files}
    missing = [file for file in package.required if file not in names]
    if missing:
        raise DeployError(f"{folder} lacks {', '.join(missing)}, which the {package.name} DAG runs")
    bucket, prefix = settings.artifacts_bucket, job_code.key_prefix(settings.image_tag, package.name)
    bodies = {f"files/{path.name}": path.read_bytes() for path in files}
    if package.sourcedir:
        bodies[job_code.SOURCEDIR] = sourcedir_archive(files)
    try:
        for key, body in bodies.items():
            s3.put_object(Bucket=bucket, Key=f"{prefix}{key}", Body=body)
    except s3.exceptions.NoSuchBucket:
        raise DeployError(f"bucket {bucket!r} does not exist: create it (or pass --bucket)") from None
    manifest = {
        "package": package.name,
        "image_tag": settings.image_tag,
        "prefix": f"s3://{bucket}/{prefix}",
        "files": sorted(path.name for path in files),
        "objects": {
            key: {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
            for key, body in bodies.items()
        },
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}{job_code.MANIFEST}", Body=json.dumps(manifest, indent=1))
    return manifest
