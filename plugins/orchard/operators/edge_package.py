"""orchard's edge package: the replacement for SageMaker Edge Manager's retired packaging job.

A package is one .tar.gz under a versioned key, `<prefix><model name>/<version>/package.tar.gz`, holding
the compiled model files as Neo wrote them, `manifest.json` (name, version, framework, input shape, target,
sha256 and size of every file, `artifacts`: which layout Neo wrote and which runtime loads it — see
`describe_artifacts`) and `manifest.json.sig`: a KMS asymmetric signature
(RSASSA_PSS_SHA_256 over the manifest's sha256) that devices check with kms:Verify before loading anything.
manifest.json and reference.json are also stored next to the archive for people and the monitor.
Packaging a version that already exists is refused unless `force` is set: a version names one content.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.common.compat.sdk import AirflowException
from airflow.sdk import Asset

from orchard.settings import load_settings

PACKAGE_PREFIX = "edge_deployment/packages/"
# The Asset each edge_deployment run publishes. Built here, at import: an s3:// Asset asks the providers
# manager for its URI normaliser, a once-per-process cost that does not belong to every parse of the DAG.
PACKAGES_ASSET = Asset(
    name="edge_deployment.packages",
    uri=f"s3://{load_settings(variables=False).artifacts_bucket}/{PACKAGE_PREFIX}",
)
SIGNING_ALGORITHM = "RSASSA_PSS_SHA_256"
KEY_SPEC = "RSA_2048"
MANIFEST, SIGNATURE = "manifest.json", "manifest.json.sig"


def ensure_signing_key(kms: Any, alias: str) -> str:
    """The ARN of the asymmetric signing key behind `alias`, created once (a KMS key costs $1/month)."""
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
    except kms.exceptions.NotFoundException:
        key = kms.create_key(
            KeySpec=KEY_SPEC,
            KeyUsage="SIGN_VERIFY",
            Description="orchard edge package signing (manifest.json of each package)",
        )
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyMetadata"]["KeyId"])
        return key["KeyMetadata"]["Arn"]


# Neo's output for a DLR target: the library, its weights and its graph (compiled.so, compiled.params,
# compiled_model.json) + Neo's compiled.meta. DLR loads "a directory containing the compiled model artifacts
# (.so, .params, .json)" (https://pypi.org/project/dlr/; Neo's "Deploy Models":
# https://docs.aws.amazon.com/sagemaker/latest/dg/neo-deployment-edge.html).
NEO_META = "compiled.meta"
ORCHARD_FILES = ("reference.json", "prepare.json")  # the prepare job's files, not Neo's


def describe_artifacts(files: dict[str, bytes]) -> dict[str, Any]:
    """What Neo wrote, described from the files themselves (no orchard-only file is required):
    `layout` ("neo-dlr", "neo-sandbox" or "unknown"), `runtime` (what loads it on a device: "dlr",
    "tvm-relax-vm" or None), `files` (Neo's files), `meta` (compiled.meta, when Neo wrote one)."""
    names = set(files) - set(ORCHARD_FILES)
    meta: dict[str, Any] = {}
    if NEO_META in files:
        try:
            meta = json.loads(files[NEO_META])
        except ValueError:
            meta = {}
    suffixes = {Path(name).suffix for name in names - {NEO_META}}
    if {".so", ".params", ".json"} <= suffixes:
        layout, runtime = "neo-dlr", "dlr"
    elif "compiled.so" in names and meta.get("Runtime") == "tvm-relax-vm":  # the sandbox's Neo (sandbox.md)
        layout, runtime = "neo-sandbox", "tvm-relax-vm"
    else:
        layout, runtime = "unknown", None
    compiler = " ".join(str(v) for v in (meta.get("Compiler") or {}).values() if isinstance(v, str))
    return {
        "layout": layout,
        "runtime": runtime,
        "files": sorted(names),
        "meta": meta,
        "quantized": bool(meta.get("Quantized")),
        "compiler": compiler[:80] or None,
    }


def package_key(prefix: str, model_name: str, version: str) -> str:
    return f"{prefix.rstrip('/')}/{model_name}/{version}/package.tar.gz".lstrip("/")


def build_manifest(
    files: dict[str, bytes],
    *,
    model_name: str,
    version: str,
    framework: str,
    input_shape: dict,
    target: str,
    artifacts: dict,
    variant: str,
    source: dict,
    prepared: dict | None = None,
) -> dict[str, Any]:
    return {
        "format": "orchard-edge-package/2",
        "name": model_name,
        "version": version,
        "framework": framework,
        "input_shape": input_shape,
        "target": target,
        "variant": variant,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "sizes_bytes": {name: len(data) for name, data in sorted(files.items())},
        "artifacts": artifacts,
        "prepared": prepared or {},
        "source": source,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def sign_manifest(kms: Any, key_id: str, manifest_bytes: bytes) -> bytes:
    return kms.sign(
        KeyId=key_id,
        Message=hashlib.sha256(manifest_bytes).digest(),
        MessageType="DIGEST",
        SigningAlgorithm=SIGNING_ALGORITHM,
    )["Signature"]


def write_archive(files: dict[str, bytes], manifest_bytes: bytes, signature: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [*sorted(files.items()), (MANIFEST, manifest_bytes), (SIGNATURE, signature)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class EdgePackageOperator(AwsBaseOperator[S3Hook]):
    """Package a Neo compilation's output as a signed orchard edge package; returns where and what it is."""

    aws_hook_class = S3Hook
    template_fields: Sequence[str] = (
        "compiled_uri",
        "model_name",
        "model_version",
        "framework",
        "input_shape",
        "target",
        "extra_files",
        "bucket",
        "prefix",
        "signing_key",
        "force",
        "source",
    )

    def __init__(
        self,
        *,
        compiled_uri: str,
        model_name: str,
        model_version: str,
        framework: str,
        input_shape: str,
        target: str,
        bucket: str,
        prefix: str,
        signing_key: str,
        extra_files: str = "",
        force: bool = False,
        source: dict | None = None,
        **kwargs,
    ):
        """`extra_files`: an S3 prefix whose files join the package (the prepare job's reference.json, prepare.json)."""
        super().__init__(**kwargs)
        self.compiled_uri, self.model_name, self.model_version = compiled_uri, model_name, model_version
        self.framework, self.input_shape, self.target, self.extra_files = (
            framework,
            input_shape,
            target,
            extra_files,
        )
        self.bucket, self.prefix, self.signing_key, self.force = bucket, prefix, signing_key, force
        self.source = source or {}

    def execute(self, context: Any) -> dict[str, Any]:
        s3, key = self.hook, package_key(self.prefix, self.model_name, self.model_version)
        kms = AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="kms").conn
        key_arn = kms.describe_key(KeyId=self.signing_key)["KeyMetadata"]["Arn"]
        if s3.check_for_key(key, self.bucket) and not _truthy(self.force):
            archive = s3.get_key(key, self.bucket).get()["Body"].read()
            manifest, signature = _read_package(archive)
            if manifest.get("source") == dict(self.source) and self.source:  # this run's own package: a retry
                self.log.info(
                    "s3://%s/%s was published from this compilation already: reusing it", self.bucket, key
                )
                return self._describe(key, archive, manifest, signature, key_arn)
            raise AirflowException(
                f"s3://{self.bucket}/{key} exists: package version {self.model_version} of {self.model_name} was "
                "already published. Bump model_version, or set force_repackage to replace it."
            )
        files = self._compiled_files()
        artifacts = describe_artifacts(files)
        if artifacts["runtime"] is None:
            self.log.warning(
                "%s holds no layout this package knows (%s): devices will refuse it",
                self.compiled_uri,
                ", ".join(artifacts["files"]),
            )
        files.update(self._extra_files())
        prepared = json.loads(files.pop("prepare.json", b"{}"))
        int8 = prepared.get("quantization") == "int8" or artifacts["quantized"]
        manifest = build_manifest(
            files,
            model_name=self.model_name,
            version=self.model_version,
            framework=self.framework,
            input_shape=json.loads(self.input_shape),
            target=self.target,
            artifacts=artifacts,
            variant="int8" if int8 else "float32",
            source=dict(self.source),
            prepared=prepared,
        )
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
        signature = sign_manifest(kms, key_arn, manifest_bytes)
        archive = write_archive(files, manifest_bytes, signature)
        s3.load_bytes(archive, key, self.bucket, replace=True)
        base = key.rsplit("/", 1)[0]
        s3.load_bytes(manifest_bytes, f"{base}/{MANIFEST}", self.bucket, replace=True)
        if "reference.json" in files:
            s3.load_bytes(files["reference.json"], f"{base}/reference.json", self.bucket, replace=True)
        self.log.info(
            "Published s3://%s/%s (%d bytes, sha256 %s), manifest signed with %s",
            self.bucket,
            key,
            len(archive),
            hashlib.sha256(archive).hexdigest(),
            key_arn,
        )
        return self._describe(key, archive, manifest, signature, key_arn)

    def _describe(
        self, key: str, archive: bytes, manifest: dict, signature: bytes, key_arn: str
    ) -> dict[str, Any]:
        """What the deploy step and the report need to know about a published package (XCom-sized)."""
        base, artifacts = key.rsplit("/", 1)[0], manifest.get("artifacts") or {}
        return {
            "package_uri": f"s3://{self.bucket}/{key}",
            "sha256": hashlib.sha256(archive).hexdigest(),
            "size_bytes": len(archive),
            "signature": base64.b64encode(signature).decode(),
            "signing_key_arn": key_arn,
            "signing_algorithm": SIGNING_ALGORITHM,
            "manifest_uri": f"s3://{self.bucket}/{base}/{MANIFEST}",
            "reference_uri": f"s3://{self.bucket}/{base}/reference.json"
            if "reference.json" in manifest["files"]
            else "",
            "files": manifest["sizes_bytes"],
            "variant": manifest["variant"],
            "model_name": manifest["name"],
            "version": manifest["version"],
            "compiled": {
                "layout": artifacts.get("layout"),
                "runtime": artifacts.get("runtime"),
                "compiler": artifacts.get("compiler"),
                "quantized": artifacts.get("quantized"),
                "sizes_bytes": {
                    name: size
                    for name, size in manifest["sizes_bytes"].items()
                    if name in artifacts.get("files", [])
                },
            },
            "prepared": {
                k: manifest.get("prepared", {}).get(k)
                for k in (
                    "sizes_bytes",
                    "int8_top1_agreement",
                    "int8_agreement_images",
                    "int8_method",
                    "note",
                )
            },
        }

    def _extra_files(self) -> dict[str, bytes]:
        if not self.extra_files:
            return {}
        bucket, _, prefix = self.extra_files[5:].partition("/")
        keys = self.hook.list_keys(bucket_name=bucket, prefix=prefix) or []
        return {
            key[len(prefix) :].lstrip("/"): self.hook.get_key(key, bucket).get()["Body"].read()
            for key in keys
            if not key.endswith("/")
        }

    def _compiled_files(self) -> dict[str, bytes]:
        bucket, _, key = self.compiled_uri[5:].partition("/")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(
                self.hook.download_file(key=key, bucket_name=bucket, local_path=tmp, preserve_file_name=True)
            )
            with tarfile.open(local) as tar:
                return {
                    m.name.lstrip("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()
                }


def _read_package(archive: bytes) -> tuple[dict, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return json.loads(tar.extractfile(MANIFEST).read()), tar.extractfile(SIGNATURE).read()


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")
