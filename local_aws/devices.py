"""Simulated edge devices: for each IoT thing marked `simulated=true`, the real include/edge_agent runs here.

A device "powers on" when a certificate is attached to its thing (it has an identity then) and powers off
when the certificate is detached, the thing deleted, or the sandbox reset. Like a factory provisioning
step, the sandbox copies the device's provisioning bundle from Secrets Manager (the secret named by the
thing attribute `provisioning_secret`: certificate, private key and agent config) onto the device's own
disk (a private folder, key file mode 0600), and its camera's frames from the S3 prefix in the thing
attribute `camera_uri`. Then it runs `agent.py` in the agent's own environment. The agent gets no AWS
credentials from the sandbox: it must obtain them from the credentials provider with its certificate.
Device output goes to CloudWatch Logs, group /orchard/edge-devices, one stream per thing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from moto.iot import models as iot_models

from local_aws import containers, images, jobs, s3io, sandbox_client
from local_aws.cloudwatch import LogStream
from local_aws.process import run_process

log = logging.getLogger(__name__)

AGENT_IMAGE = "orchard/edge-agent:latest"
DEVICE_LOG_GROUP = "/orchard/edge-devices"
SIMULATED_ATTRIBUTE = "simulated"

_running: dict[tuple[str, str, str], threading.Event] = {}
_lock = threading.Lock()


def is_simulated(thing: iot_models.FakeThing) -> bool:
    return str((thing.attributes or {}).get(SIMULATED_ATTRIBUTE, "")).lower() == "true"


def power_on(thing: iot_models.FakeThing) -> None:
    key = (thing.account_id, thing.region_name, thing.thing_name)
    with _lock:
        if key in _running:
            return
        stop = jobs.new_stop_signal()
        _running[key] = stop
    threading.Thread(
        target=_run_device, args=(thing, stop), daemon=True, name=f"device-{thing.thing_name}"
    ).start()


def power_off(account_id: str, region: str, thing_name: str) -> None:
    with _lock:
        stop = _running.pop((account_id, region, thing_name), None)
    if stop is not None:
        stop.set()


def _run_device(thing: iot_models.FakeThing, stop: threading.Event) -> None:
    stream = LogStream(thing.account_id, thing.region_name, DEVICE_LOG_GROUP, thing.thing_name)
    root = jobs.workspace("device", thing.thing_name)
    try:
        config_file, camera = _provision(thing, root)
        argv = ["python", "agent.py", "--config", str(config_file)] + (
            ["--images", str(camera)] if camera else []
        )
        env = {
            k: v
            for k, v in jobs.aws_env(thing.region_name).items()
            if not k.startswith("AWS_SECRET") and k != "AWS_ACCESS_KEY_ID"
        }
        container = containers.prepare(images.resolve(AGENT_IMAGE), argv, env, stream.write)
        outcome = run_process(
            container.argv,
            cwd=container.cwd,
            env=container.env,
            log=stream.write,
            stop=stop,
            mounts=container.mounts,
        )
        stream.write(f"[sandbox] device {thing.thing_name} agent exited with status {outcome.exit_code}")
    except Exception as error:  # a device that cannot start says why in its log stream
        log.warning("simulated device %s failed to start: %s", thing.thing_name, error)
        stream.write(f"[sandbox] device {thing.thing_name} could not start: {error}")
    finally:
        jobs.release(stop)
        jobs.discard(root)
        with _lock:
            key = (thing.account_id, thing.region_name, thing.thing_name)
            if _running.get(key) is stop:
                del _running[key]


def _provision(thing: iot_models.FakeThing, root: Path) -> tuple[Path, Path | None]:
    attributes = thing.attributes or {}
    secret_id = attributes.get("provisioning_secret")
    if not secret_id:
        raise ValueError(f"thing {thing.thing_name} is simulated but has no provisioning_secret attribute")
    secrets = sandbox_client("secretsmanager", jobs.endpoint_url(), thing.region_name)
    bundle = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    device = root / "device"
    device.mkdir(parents=True)
    (device / "certificate.pem.crt").write_text(bundle["certificatePem"])
    key_file = device / "private.pem.key"
    key_file.touch(mode=0o600)
    key_file.write_text(bundle["privateKey"])
    endpoint = jobs.endpoint_url()  # the sandbox stands in for every regional endpoint the config names
    config = {
        **bundle["config"],
        "certificate_file": "certificate.pem.crt",
        "private_key_file": "private.pem.key",
        "credentials_endpoint": endpoint,
        "jobs_endpoint": endpoint,
        "s3_endpoint": endpoint,
        "work_dir": str(device / "work"),
        "root_ca_file": None,
    }
    config_file = device / "agent-config.json"
    config_file.write_text(json.dumps(config))
    camera = None
    if attributes.get("camera_uri"):
        camera = device / "camera"
        s3io.download_prefix(attributes["camera_uri"], camera)
    return config_file, camera


# ---------------------------------------------------------------------------------------- install


def _after_attach(original: Any) -> Any:
    def attach_thing_principal(self: iot_models.IoTBackend, thing_name: str, principal_arn: str) -> None:
        original(self, thing_name, principal_arn)
        thing = self.describe_thing(thing_name)
        if is_simulated(thing) and not os.environ.get("ORCHARD_NO_SIMULATED_DEVICES"):
            power_on(thing)

    return attach_thing_principal


def _powering_off(original: Any) -> Any:
    def call(self: iot_models.IoTBackend, thing_name: str, *args: Any, **kwargs: Any) -> Any:
        power_off(self.account_id, self.region_name, thing_name)
        return original(self, thing_name, *args, **kwargs)

    return call


def install() -> None:
    backend = iot_models.IoTBackend
    backend.attach_thing_principal = _after_attach(backend.attach_thing_principal)
    backend.detach_thing_principal = _powering_off(backend.detach_thing_principal)
    backend.delete_thing = _powering_off(backend.delete_thing)
