"""The agent's package checks, run in the agent's own environment against the sandbox's KMS: a package
signed by EdgePackageOperator's code installs; any tampering is refused and nothing is installed."""

from __future__ import annotations

import base64
import hashlib
import json

import boto3
import pytest

from orchard.operators.edge_package import (
    SIGNING_ALGORITHM,
    build_manifest,
    ensure_signing_key,
    sign_manifest,
    write_archive,
)

INSTALL = """
import base64, json, sys
from pathlib import Path
import boto3
import package
request = json.loads(sys.argv[1])
try:
    manifest = package.install(Path(request["archive"]), request["sha256"], boto3.client("kms"), request["key"],
                               request["algorithm"], Path(request["dest"]), base64.b64decode(request["signature"]))
    print(json.dumps({"installed": manifest["version"]}))
except package.PackageRejected as error:
    print(json.dumps({"refused": str(error)}))
"""

FILES = {"model.so": b"\x7fELF compiled model bytes", "reference.json": b'{"inputs": {}}'}


@pytest.fixture
def signed(aws):
    kms = boto3.client("kms")
    key = ensure_signing_key(kms, "alias/test-edge-signing")
    manifest = build_manifest(
        FILES,
        model_name="m",
        version="1.0.0",
        framework="ONNX",
        input_shape={"data": [1, 3, 8, 8]},
        target="linux_x86_64",
        artifacts={"files": ["model.so"]},
        variant="float32",
        source={},
    )
    body = json.dumps(manifest).encode()
    return key, body, sign_manifest(kms, key, body)


def install(
    run_job_python, tmp_path, archive: bytes, signature: bytes, key: str, sha256: str | None = None
) -> dict:
    path = tmp_path / "package.tar.gz"
    path.write_bytes(archive)
    request = {
        "archive": str(path),
        "sha256": sha256 or hashlib.sha256(archive).hexdigest(),
        "key": key,
        "algorithm": SIGNING_ALGORITHM,
        "dest": str(tmp_path / "installed"),
        "signature": base64.b64encode(signature).decode(),
    }
    result = run_job_python("edge_agent", "-c", INSTALL, json.dumps(request), timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_signed_package_round_trip_installs(run_job_python, tmp_path, signed):
    key, body, signature = signed
    assert install(run_job_python, tmp_path, write_archive(FILES, body, signature), signature, key) == {
        "installed": "1.0.0"
    }
    assert (tmp_path / "installed" / "model.so").read_bytes() == FILES["model.so"]


def test_tampered_model_file_is_refused(run_job_python, tmp_path, signed):
    key, body, signature = signed
    tampered = write_archive({**FILES, "model.so": b"\x7fELF evil"}, body, signature)
    # The attacker also rewrote the job document's sha256: the signed manifest still catches the file.
    answer = install(run_job_python, tmp_path, tampered, signature, key)
    assert "model.so: sha256 differs from the signed manifest" in answer["refused"]
    assert not (tmp_path / "installed").exists()


def test_tampered_manifest_fails_the_kms_signature(run_job_python, tmp_path, signed):
    key, body, signature = signed
    forged = body.replace(b'"1.0.0"', b'"6.6.6"')
    answer = install(run_job_python, tmp_path, write_archive(FILES, forged, signature), signature, key)
    assert "manifest signature is not valid" in answer["refused"]


def test_archive_not_matching_the_job_document_is_refused(run_job_python, tmp_path, signed):
    key, body, signature = signed
    answer = install(
        run_job_python, tmp_path, write_archive(FILES, body, signature), signature, key, sha256="0" * 64
    )
    assert "differs from the job document" in answer["refused"]


def test_extra_file_slipped_into_the_package_is_refused(run_job_python, tmp_path, signed):
    key, body, signature = signed
    answer = install(
        run_job_python,
        tmp_path,
        write_archive({**FILES, "backdoor.sh": b"rm -rf /"}, body, signature),
        signature,
        key,
    )
    assert "extra ['backdoor.sh']" in answer["refused"]
