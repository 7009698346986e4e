"""SageMaker asynchronous endpoints that really run the model's inference handler.

moto creates an endpoint InService at once and answers `InvokeEndpointAsync` with canned results in a
bucket of its own. Here an endpoint whose config has an `AsyncInferenceConfig` is Creating while its
model loads — one long-lived process per endpoint (the instance), the model's handler loaded once in
its image's environment — then InService, or Failed with the reason if the model does not load.
Each invocation is queued; the process applies model_fn/input_fn/predict_fn/output_fn to the S3
input and the result lands at `<S3OutputPath>/<uuid>.out`, a failure's message at
`<S3FailurePath>/<uuid>-error.out`, with the handler's real latency. Deleting the endpoint stops
its process. The instance count does not follow autoscaling: one process serves the endpoint.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moto.core.exceptions import JsonRESTError
from moto.s3.models import s3_backends
from moto.sagemaker import models as moto_sm
from moto.sagemaker.exceptions import ValidationError
from moto.sagemakerruntime import responses as runtime_responses

from local_aws import containers, images, jobs, s3io
from local_aws.cloudwatch import LogStream

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("async_worker.py")
ANSWER_PREFIX = "@@answer@@ "
ENDPOINT_GROUP = "/aws/sagemaker/Endpoints/{name}"
_runtimes: dict[tuple[str, str, str], EndpointRuntime] = {}
_lock = threading.Lock()


@dataclass
class Invocation:
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str
    content_type: str
    accept: str


class EndpointRuntime:
    """The instance behind one async endpoint: its model process and its queue of invocations."""

    def __init__(self, endpoint: Any, config: Any, model: Any, account_id: str, region: str):
        self.endpoint, self.account_id, self.region = endpoint, account_id, region
        self.async_config = config.async_inference_config
        self.container = model.primary_container or model.containers[0]
        self.role_arn = model.execution_role_arn  # the model process runs with the model's role
        self.variant = config.production_variants[0]["VariantName"]
        self.root = jobs.workspace("endpoint", endpoint.endpoint_name)
        self.stop = jobs.new_stop_signal()
        self.pending: queue.Queue[Invocation | None] = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.process: subprocess.Popen | None = None
        self.log = LogStream(
            account_id,
            region,
            ENDPOINT_GROUP.format(name=endpoint.endpoint_name),
            f"{self.variant}/i-{uuid.uuid4().hex[:17]}",
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        threading.Thread(
            target=self._serve, daemon=True, name=f"endpoint-{self.endpoint.endpoint_name}"
        ).start()

    def shutdown(self) -> None:
        self.stop.set()
        self.pending.put(None)

    def _serve(self) -> None:
        try:
            self._start_model()
        except Exception as error:
            log.warning("endpoint %s failed to start: %s", self.endpoint.endpoint_name, error)
            self.endpoint.failure_reason = str(error)[:1024]
            self._set_status("Failed")
            self._cleanup()
            return
        self._set_status("InService")
        threading.Thread(target=self._read_answers, daemon=True).start()
        self._feed_requests()

    def _start_model(self) -> None:
        image = images.resolve(self.container["Image"])
        model_dir = self.root / "opt" / "ml" / "model"
        model_dir.mkdir(parents=True)
        if self.container.get("ModelDataUrl"):
            archive = s3io.download_file(self.container["ModelDataUrl"], self.root / "model.tar.gz")
            s3io.untar(archive, model_dir)
        code_dir = image.folder or (model_dir / "code")
        env = {**jobs.aws_env(self.region, self.role_arn, "sagemaker.amazonaws.com"),
               **(self.container.get("Environment") or {})}
        command = ["python", str(WORKER), str(model_dir), str(code_dir)]
        prepared = containers.prepare(image, command, env, self.log.write, code_dir=code_dir, entrypoint=[])
        self.process = subprocess.Popen(
            prepared.argv,
            cwd=prepared.cwd,
            env={**prepared.env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        assert self.process.stdout is not None
        tail: list[str] = []
        for line in self.process.stdout:  # model_fn runs first: InService only once the model is loaded
            if line.startswith(ANSWER_PREFIX):
                return
            self.log.write(line)
            tail = [*tail[-4:], line.rstrip()]
        raise RuntimeError(
            f"The primary container for production variant {self.variant} did not pass the ping "
            f"health check: the model process exited ({self.process.wait()}): {' | '.join(tail)}"
        )

    def _set_status(self, status: str) -> None:
        self.endpoint.endpoint_status = status
        self.endpoint.last_modified_time = moto_sm.utcnow()

    def _cleanup(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
        jobs.release(self.stop)
        jobs.discard(self.root)

    # ---------------------------------------------------------------- requests

    def submit(self, invocation: Invocation) -> None:
        self.pending.put(invocation)

    def _feed_requests(self) -> None:
        assert self.process is not None and self.process.stdin is not None
        try:
            while not self.stop.is_set():
                try:
                    invocation = self.pending.get(timeout=0.5)  # wakes up to see a sandbox reset
                except queue.Empty:
                    continue
                if invocation is None:
                    break
                request = self._stage(invocation)
                if request is None:
                    continue
                self.in_flight[invocation.inference_id] = invocation
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            log.warning("endpoint %s lost its model process: %s", self.endpoint.endpoint_name, error)
        finally:
            self._cleanup()

    def _stage(self, invocation: Invocation) -> dict[str, str] | None:
        """Download the input next to the process; a missing input is the invocation's failure."""
        local = self.root / "requests" / invocation.inference_id
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            local.write_bytes(self._s3_get(invocation.input_location))
        except Exception as error:
            self._write(
                invocation.failure_location,
                f"Failed to download the input {invocation.input_location}: {error}",
            )
            return None
        return {
            "id": invocation.inference_id,
            "input": str(local),
            "output": f"{local}.out",
            "content_type": invocation.content_type,
            "accept": invocation.accept,
        }

    def _read_answers(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if not line.startswith(ANSWER_PREFIX):
                self.log.write(line)
                continue
            result = json.loads(line[len(ANSWER_PREFIX) :])
            invocation = self.in_flight.pop(result["id"], None)
            if invocation is None:
                continue
            local = self.root / "requests" / invocation.inference_id
            if result["ok"]:
                self._write(invocation.output_location, Path(f"{local}.out").read_bytes())
            else:
                self._write(invocation.failure_location, result["error"])
            for path in (local, Path(f"{local}.out")):
                path.unlink(missing_ok=True)

    def _s3_get(self, uri: str) -> bytes:
        bucket, key = s3io.split_uri(uri)
        stored = s3_backends[self.account_id]["aws"].get_object(bucket, key)
        if stored is None:
            raise FileNotFoundError(f"NoSuchKey: {uri}")
        return stored.value

    def _write(self, uri: str, body: bytes | str) -> None:
        bucket, key = s3io.split_uri(uri)
        data = body.encode() if isinstance(body, str) else body
        try:
            s3_backends[self.account_id]["aws"].put_object(bucket, key, data)
        except Exception as error:  # e.g. the output bucket is gone: AWS drops the result too
            log.warning("endpoint %s could not write %s: %s", self.endpoint.endpoint_name, uri, error)


def runtime_of(account_id: str, region: str, name: str) -> EndpointRuntime | None:
    with _lock:
        runtime = _runtimes.get((account_id, region, name))
    return None if runtime is None or runtime.stop.is_set() else runtime


# ---------------------------------------------------------------------------------- API patches


def _create_endpoint(original: Any) -> Any:
    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        if endpoint_name in self.endpoints:
            arn = moto_sm.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        endpoint = original(self, endpoint_name, endpoint_config_name, tags)
        config = self.endpoint_configs[endpoint_config_name]
        if config.async_inference_config:
            model = self._models[config.production_variants[0]["ModelName"]]
            runtime = EndpointRuntime(endpoint, config, model, self.account_id, self.region_name)
            endpoint.endpoint_status = "Creating"
            with _lock:
                _runtimes[(self.account_id, self.region_name, endpoint_name)] = runtime
            runtime.start()
        return endpoint

    return create_endpoint


def _delete_endpoint(original: Any) -> Any:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original(self, endpoint_name)
        with _lock:
            runtime = _runtimes.pop((self.account_id, self.region_name, endpoint_name), None)
        if runtime is not None:
            runtime.shutdown()

    return delete_endpoint


def _invoke_endpoint_async(self: runtime_responses.SageMakerRuntimeResponse) -> Any:
    endpoint_name = unquote(self.path.split("/")[2])
    runtime = runtime_of(self.current_account, self.region, endpoint_name)
    if runtime is None:
        raise JsonRESTError(
            "ValidationError",
            f"Endpoint {endpoint_name} of account {self.current_account} not found "
            "or is not an asynchronous endpoint.",
        )
    if runtime.endpoint.endpoint_status != "InService":
        raise JsonRESTError(
            "ValidationError",
            f"Endpoint {endpoint_name} is {runtime.endpoint.endpoint_status}, not InService.",
        )
    input_location = self.headers.get("X-Amzn-SageMaker-InputLocation")
    if not input_location or not input_location.startswith("s3://"):
        raise JsonRESTError("ValidationError", f"InputLocation must be an s3:// URI, not {input_location!r}.")
    output_config = runtime.async_config.get("OutputConfig", {})
    output_path = output_config["S3OutputPath"].rstrip("/")
    failure_path = (output_config.get("S3FailurePath") or output_path).rstrip("/")
    object_id = str(uuid.uuid4())
    invocation = Invocation(
        inference_id=self.headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4()),
        input_location=input_location,
        output_location=f"{output_path}/{object_id}.out",
        failure_location=f"{failure_path}/{object_id}-error.out",
        content_type=self.headers.get("X-Amzn-SageMaker-Content-Type") or "application/octet-stream",
        accept=self.headers.get("X-Amzn-SageMaker-Accept") or "application/json",
    )
    runtime.submit(invocation)
    headers = {
        "X-Amzn-SageMaker-OutputLocation": invocation.output_location,
        "X-Amzn-SageMaker-FailureLocation": invocation.failure_location,
    }
    return (
        202,
        headers,
        json.dumps({"InferenceId": invocation.inference_id, "OutputLocation": invocation.output_location}),
    )


def stop_all() -> None:
    with _lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
    for runtime in runtimes:
        runtime.shutdown()


def install() -> None:
    backend = moto_sm.SageMakerModelBackend
    backend.create_endpoint = _create_endpoint(backend.create_endpoint)
    backend.delete_endpoint = _delete_endpoint(backend.delete_endpoint)
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint_async = _invoke_endpoint_async
