"""Temporary AWS credentials for the device: its X.509 certificate → IoT credentials provider → role alias.

On AWS the provider authenticates the device by mutual TLS:
    GET https://<prefix>.credentials.iot.<region>.amazonaws.com/role-aliases/<alias>/credentials
    (client certificate + key on the TLS connection, header x-amzn-iot-thingname)
The local sandbox serves plain HTTP, so there (an http:// endpoint) the device sends its certificate in a
header and proves it holds the private key by signing `<thing name>|<unix time>` with it: what the TLS
handshake proves on AWS. The private key itself never leaves the device.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class CredentialsError(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: str

    def expires_within(self, seconds: float) -> bool:
        expires = datetime.datetime.strptime(self.expiration, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
        return expires - datetime.datetime.now(datetime.UTC) < datetime.timedelta(seconds=seconds)

    def boto3_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


def fetch(
    endpoint: str,
    role_alias: str,
    thing_name: str,
    cert_file: Path,
    key_file: Path,
    root_ca_file: Path | None = None,
    timeout_s: float = 10,
) -> Credentials:
    url = f"{endpoint.rstrip('/')}/role-aliases/{role_alias}/credentials"
    request = urllib.request.Request(url, headers={"x-amzn-iot-thingname": thing_name})
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=str(root_ca_file) if root_ca_file else None)
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    else:
        for name, value in sandbox_proof(thing_name, cert_file, key_file).items():
            request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise CredentialsError(
            f"credentials provider refused ({error.code}): {error.read().decode()[:300]}"
        ) from error
    except OSError as error:
        raise CredentialsError(f"credentials provider unreachable at {url}: {error}") from error
    c = body["credentials"]
    return Credentials(c["accessKeyId"], c["secretAccessKey"], c["sessionToken"], c["expiration"])


def sandbox_proof(thing_name: str, cert_file: Path, key_file: Path) -> dict[str, str]:
    """The headers that stand in for the TLS client certificate against the sandbox."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    signed_at = str(int(time.time()))
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    signature = key.sign(f"{thing_name}|{signed_at}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        "x-orchard-client-certificate": base64.b64encode(cert_file.read_bytes()).decode(),
        "x-orchard-signed-at": signed_at,
        "x-orchard-signature": base64.b64encode(signature).decode(),
    }
