"""The monitor: the captures since the run's IoT job started, against the reference → drift.json."""

from __future__ import annotations

import base64
import json
import time

import boto3
import numpy as np

from tests.plugins.edge_deployment.samples import RUN

PREFIX = "edge_deployment/captures"
DEVICES = ("cam-1", "cam-2")


def _record(device: str, model: str, brightness: int) -> str:
    def encode(array: np.ndarray) -> dict:
        return {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode(),
        }

    frame = np.full((4, 4, 3), brightness, dtype="uint8")
    scores = np.array([0.1, 0.9], dtype="float32")
    return json.dumps({"device": device, "model": model, "input": encode(frame), "output": encode(scores)})


def _put_captures(s3, bucket: str, device: str, model: str, objects: int, brightness: int) -> None:
    for n in range(objects):
        body = "\n".join(_record(device, model, brightness) for _ in range(3))
        s3.put_object(
            Bucket=bucket, Key=f"{PREFIX}/fleet/{device}/{model}/2026/12/07/10/{n:05d}.jsonl", Body=body
        )


def test_the_monitor_reads_every_capture_since_the_job_started_on_one_session(s3, sessions_built):
    """Captures written before the job (an earlier run's) and other models' are left out; each device's
    records are all read (several objects, read concurrently); S3 and IoT calls share one session."""
    from orchard.edge_deployment.monitor import monitor_drift
    from orchard.settings import load_settings
    from tests.plugins.edge_deployment.samples import demo_params

    settings = load_settings(variables=False)
    params = demo_params(fleet_name="fleet", device_names=list(DEVICES))
    _put_captures(s3, settings.data_bucket, "cam-1", "m", objects=2, brightness=250)  # an earlier run's
    time.sleep(1.1)  # S3's LastModified and the job's createdAt are whole seconds in the sandbox
    iot = boto3.client("iot")
    group = iot.create_thing_group(thingGroupName="fleet")["thingGroupArn"]
    job = iot.create_job(jobId="monitor-job", targets=[group], document="{}")
    time.sleep(1.1)
    for device in DEVICES:
        _put_captures(s3, settings.data_bucket, device, "m", objects=12, brightness=128)
    _put_captures(s3, settings.data_bucket, "cam-2", "other-model", objects=1, brightness=0)
    reference = {
        "inputs": {
            "bin_edges": np.linspace(0, 1, 11).tolist(),
            "counts": [0] * 5 + [10] + [0] * 4,
            "mean": 0.5,
        },
        "predictions": {"classes": 2, "counts": [0, 10]},
    }
    s3.put_object(Bucket=settings.artifacts_bucket, Key="ref/reference.json", Body=json.dumps(reference))
    package = {"model_name": "m", "reference_uri": f"s3://{settings.artifacts_bucket}/ref/reference.json"}
    deployment = {"job_id": job["jobId"], "succeeded": list(DEVICES)}

    result = monitor_drift(package, deployment, params, PREFIX, "edge_deployment", RUN)

    assert len(sessions_built) == 1
    assert result["records"] == 2 * 12 * 3
    assert {d: s["records"] for d, s in result["devices"].items()} == {"cam-1": 36, "cam-2": 36}
    assert {s["input_drift"] for s in result["devices"].values()} == {"stable"}  # no bright earlier run
    bucket, key = result["drift_uri"].removeprefix("s3://").split("/", 1)
    stored = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert stored["reference"] == reference and stored["summary"]["devices"]["cam-2"]["records"] == 36
