"""orchard's edge agent: the device runtime that replaces the retired SageMaker Edge Manager agent.

    python agent.py --config agent-config.json [--images DIR] [--once]

Loop: take the device's next IoT job (IoT Jobs data plane, StartNextPendingJobExecution); for a deploy
job, download the package, verify it (sha256, KMS signature, file hashes: see package.py), load its model
by name (several may live together), run the device application over the camera's images
(predict + capture), flush the capture and report the execution SUCCEEDED with its counts — or FAILED
with the reason (a tampered package is refused and nothing of it is loaded). AWS credentials come from
the IoT credentials provider through the role alias, with the device's certificate (credentials.py).

The config is the seed's sagemaker_edge_config, in orchard's words (see `Config`).
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import credentials
import numpy as np
import package
from capture import CaptureBuffer, CaptureSettings
from models import ModelError, ModelManager

DEPLOY_OPERATION = "orchard.deploy-edge-package"


@dataclass(frozen=True)
class Config:
    device_name: str
    fleet_name: str
    region: str
    credentials_endpoint: str
    jobs_endpoint: str
    role_alias: str
    certificate_file: Path
    private_key_file: Path
    capture: CaptureSettings
    root_ca_file: Path | None = None
    work_dir: Path = Path("work")
    poll_seconds: float = 5.0
    s3_endpoint: str | None = None  # None: AWS's regional endpoint
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Config:
        raw = json.loads(path.read_text())
        base = path.parent
        return cls(
            device_name=raw["device_name"],
            fleet_name=raw["fleet_name"],
            region=raw["region"],
            credentials_endpoint=raw["credentials_endpoint"],
            jobs_endpoint=raw["jobs_endpoint"],
            role_alias=raw["role_alias"],
            certificate_file=base / raw["certificate_file"],
            private_key_file=base / raw["private_key_file"],
            root_ca_file=base / raw["root_ca_file"] if raw.get("root_ca_file") else None,
            capture=CaptureSettings(**raw["capture"]),
            work_dir=base / raw.get("work_dir", "work"),
            poll_seconds=float(raw.get("poll_seconds", 5)),
            s3_endpoint=raw.get("s3_endpoint"),
        )


class Agent:
    def __init__(self, config: Config):
        self.config = config
        self.models = ModelManager()
        self._credentials: credentials.Credentials | None = None
        self._clients: dict[str, object] = {}
        self._capture: CaptureBuffer | None = None

    # ---------------------------------------------------------------- AWS access through the role alias
    def client(self, service: str):
        import boto3

        if self._credentials is None or self._credentials.expires_within(300):
            self._clients.clear()  # clients hold the old session's keys
            c = self.config
            self._credentials = credentials.fetch(
                c.credentials_endpoint,
                c.role_alias,
                c.device_name,
                c.certificate_file,
                c.private_key_file,
                c.root_ca_file,
            )
            print(
                f"credentials from role alias {c.role_alias} (expire {self._credentials.expiration})",
                flush=True,
            )
        if service not in self._clients:
            endpoint = self.config.jobs_endpoint if service == "iot-jobs-data" else self.config.s3_endpoint
            self._clients[service] = boto3.client(
                service,
                region_name=self.config.region,
                endpoint_url=endpoint,
                **self._credentials.boto3_kwargs(),
            )
        return self._clients[service]

    @property
    def capture(self) -> CaptureBuffer:
        if self._capture is None:
            self._capture = CaptureBuffer(
                self.config.capture, lambda: self.client("s3"), self.config.device_name
            )
        return self._capture

    # ----------------------------------------------------------------------------------- the job loop
    def run(self, images: Path | None, once: bool, stop: threading.Event) -> None:
        print(f"agent {self.config.device_name} of fleet {self.config.fleet_name} started", flush=True)
        while not stop.is_set():
            execution = (
                self.client("iot-jobs-data")
                .start_next_pending_job_execution(thingName=self.config.device_name)
                .get("execution")
            )
            if execution:
                self.handle(execution, images)
                if once:
                    break
                continue
            stop.wait(self.config.poll_seconds)
        if self._capture is not None:
            self._capture.close()

    def handle(self, execution: dict, images: Path | None) -> None:
        job_id, document = execution["jobId"], execution.get("jobDocument") or "{}"
        print(f"job {job_id}: execution {execution.get('executionNumber')} started", flush=True)
        try:
            details = self.deploy(json.loads(document), images)
        except (package.PackageRejected, ModelError, ValueError, KeyError) as error:
            print(f"job {job_id}: REFUSED {error}", flush=True)
            return self._report(job_id, "FAILED", {"reason": str(error)[:1000]})
        except Exception as error:  # any failure must end as a FAILED execution, never a silent agent
            print(f"job {job_id}: FAILED {type(error).__name__}: {error}", flush=True)
            return self._report(job_id, "FAILED", {"reason": f"{type(error).__name__}: {error}"[:1000]})
        self._report(job_id, "SUCCEEDED", details)

    def _report(self, job_id: str, status: str, details: dict) -> None:
        self.client("iot-jobs-data").update_job_execution(
            jobId=job_id,
            thingName=self.config.device_name,
            status=status,
            statusDetails={k: str(v) for k, v in details.items()},
        )
        print(f"job {job_id}: reported {status} {json.dumps(details)}", flush=True)

    def deploy(self, document: dict, images: Path | None) -> dict:
        if document.get("operation") != DEPLOY_OPERATION:
            raise ValueError(
                f"unknown job operation {document.get('operation')!r}; this agent runs {DEPLOY_OPERATION}"
            )
        model_name, version = document["model_name"], document["version"]
        folder = self.config.work_dir / "models" / model_name / version
        archive = folder.parent / f"{version}.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        bucket, _, key = document["package_uri"][5:].partition("/")
        self.client("s3").download_file(bucket, key, str(archive))
        manifest = package.install(
            archive,
            document["sha256"],
            self.client("kms"),
            document["signing_key_id"],
            document["signing_algorithm"],
            folder,
            base64.b64decode(document["signature"]),
        )
        print(
            f"package {manifest['name']} {manifest['version']} verified (sha256, KMS signature, "
            f"{len(manifest['files'])} files)",
            flush=True,
        )
        if model_name in self.models.names():
            self.models.unload(model_name)  # the new version replaces the old one under the same name
        model = self.models.load(model_name, folder, manifest)
        details = {"model": model_name, "version": version, "variant": model.variant}
        if images is not None:
            details.update(self.predict_folder(model_name, images))
        return details

    # --------------------------------------------------------------------------- the device application
    def predict_folder(self, model_name: str, images: Path) -> dict:
        """The device's application: predict every camera image with the model, capturing each call."""
        model = self.models.get(model_name)
        paths = sorted(images.glob("*.npy"))
        started = time.perf_counter()
        for path in paths:
            self.predict_and_capture(model_name, np.load(path), request_id=path.stem)
        seconds = time.perf_counter() - started
        self.capture.flush()
        rate = len(paths) / seconds if seconds > 0 else 0.0
        print(
            f"{model.name}: {len(paths)} predictions in {seconds:.2f} s ({rate:.1f}/s), "
            f"{self.capture.pushed_records} captured",
            flush=True,
        )
        return {
            "predictions": len(paths),
            "predictions_per_second": round(rate, 1),
            "captured": self.capture.pushed_records,
            "capture_dropped": self.capture.dropped,
        }

    def predict_and_capture(self, model_name: str, image: np.ndarray, request_id: str) -> np.ndarray:
        model = self.models.get(model_name)
        scores = model.predict(to_input(image, model.input_shape))
        self.capture.add(model_name, image, scores[0], request_id)
        return scores[0]


def to_input(image: np.ndarray, shape: list[int]) -> np.ndarray:
    """uint8 H x W x C camera frame -> float32 1 x C x H x W in [0, 1]."""
    array = image.astype(np.float32) / 255.0
    if array.ndim == 3 and array.shape[-1] == shape[1]:
        array = array.transpose(2, 0, 1)
    return array[None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--images", type=Path, help="the camera: a folder of .npy frames")
    parser.add_argument("--once", action="store_true", help="exit after one job")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Agent(Config.load(args.config)).run(args.images, args.once, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
