"""An orchard edge package on the device: download, check the archive's sha256, verify the signed manifest.

The package (built by orchard's EdgePackageOperator) is a .tar.gz holding the compiled model files,
`manifest.json` (name, version, framework, input shape, target, sha256 of every file) and
`manifest.json.sig` (a KMS asymmetric signature of manifest.json's bytes). A device installs it only if
1. the archive's sha256 is the one the IoT job document names,
2. KMS says the signature over manifest.json is valid for the job's key (kms:Verify),
3. every file has the sha256 the manifest lists, and no file is missing or extra.
Anything else is a tampered package: it is refused and nothing of it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"


class PackageRejected(Exception):
    """The package failed a check; the message says which (it becomes the job execution's reason)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install(
    archive: Path,
    expected_sha256: str,
    kms_client,
    key_id: str,
    signing_algorithm: str,
    dest: Path,
    signature: bytes | None = None,
) -> dict:
    """Verify `archive` and unpack it into `dest`; return its manifest. Raises PackageRejected."""
    actual = sha256_file(archive)
    if actual != expected_sha256:
        raise PackageRejected(
            f"package sha256 {actual[:12]}... differs from the job document's {expected_sha256[:12]}..."
        )
    staging = dest.with_name(dest.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise PackageRejected(f"package is not a readable archive: {error}") from error
    try:
        manifest = verify_unpacked(staging, kms_client, key_id, signing_algorithm, signature)
    except PackageRejected:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return manifest


def verify_unpacked(
    folder: Path, kms_client, key_id: str, signing_algorithm: str, signature: bytes | None = None
) -> dict:
    """`signature`: the one the IoT job document carries; the package's own copy must be the same."""
    manifest_path, signature_path = folder / MANIFEST, folder / SIGNATURE
    if not manifest_path.exists() or not signature_path.exists():
        raise PackageRejected("package has no manifest.json and manifest.json.sig")
    if signature is not None and signature_path.read_bytes() != signature:
        raise PackageRejected("the package's manifest signature differs from the job document's")
    body = manifest_path.read_bytes()
    try:
        valid = kms_client.verify(
            KeyId=key_id,
            Message=hashlib.sha256(body).digest(),
            MessageType="DIGEST",
            Signature=signature_path.read_bytes(),
            SigningAlgorithm=signing_algorithm,
        )["SignatureValid"]
    except Exception as error:  # KMS answers KMSInvalidSignatureException for a bad signature
        raise PackageRejected(f"manifest signature is not valid for {key_id}: {error}") from error
    if not valid:
        raise PackageRejected(f"manifest signature is not valid for {key_id}")
    manifest = json.loads(body)
    listed = manifest["files"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {
        MANIFEST,
        SIGNATURE,
    }
    if present != set(listed):
        raise PackageRejected(
            f"package files differ from the manifest: extra {sorted(present - set(listed))}, "
            f"missing {sorted(set(listed) - present)}"
        )
    for name, expected in listed.items():
        if sha256_file(folder / name) != expected:
            raise PackageRejected(f"{name}: sha256 differs from the signed manifest")
    return manifest
