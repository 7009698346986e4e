"""SageMaker asynchronous endpoints that really run the model's inference handler.

moto creates an endpoint InService at once and answers `InvokeEndpointAsync` with canned results in a
bucket of its own. Here an endpoint whose config has an `AsyncInferenceConfig` is Creating while its
model loads — one long-lived process per endpoint (the instance), the model's handler loaded once in
its image's environment — then InService, or Failed with the reason if the model does not load.
Each invocation is queued; the process applies model_fn/input_fn/predict_fn/output_fn to the S3
input and the result lands at `<S3OutputPath>/<uuid>.out`, a failure's message at
`<S3FailurePath>/<uuid>-error.out` as the model server's JSON error ({"code", "type", "message"}),
with the handler's real latency. A real-time endpoint (no AsyncInferenceConfig) runs the same way:
`InvokeEndpoint` hands the body to its model process and returns the answer, or ModelError with the
model's message. Deleting the endpoint stops its process. The instance count does not follow
autoscaling: one process serves the endpoint.
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
from local_aws.process import container_path, namespaced

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("async_worker.py")
_CODE_DIR = "<code dir>"  # filled in once prepare() says where the image's code folder is mounted
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
    # A real-time InvokeEndpoint: the body comes with the request and the caller waits for the answer.
    body: bytes | None = None
    done: threading.Event | None = None
    answer: dict[str, Any] | None = None


def model_server_error(message: str, code: int = 500) -> str:
    """A failed inference as the SageMaker model servers answer it (Multi Model Server / TorchServe, the
    servers of SageMaker's framework inference images): {"code", "type", "message"} JSON, e.g.
    {"code": 599, "type": "InternalServerException", "message": "Some Prediction Error"} in
    https://github.com/awslabs/multi-model-server/pull/969. Async inference writes the model's error
    response to S3FailurePath; InvokeEndpoint returns it as ModelError's OriginalMessage."""
    return json.dumps({"code": code, "type": "InternalServerException", "message": message})


class EndpointRuntime:
    """The instance behind one async endpoint: its model process and its queue of invocations."""

    def __init__(self, endpoint: Any, config: Any, model: Any, account_id: str, region: str):
        self.endpoint, self.account_id, self.region = endpoint, account_id, region
        self.async_config = config.async_inference_config  # None: a real-time endpoint
        self.container = model.primary_container or model.containers[0]
        self.role_arn = model.execution_role_arn  # the model process runs with the model's role
        self.variant = config.production_variants[0]["VariantName"]
        self.root = jobs.workspace("endpoint", endpoint.endpoint_name)
        # The model process's own filesystem (/opt/ml, /tmp) in its mount namespace; requests wait
        # for it in its /tmp (the sandbox's stand-in for the HTTP body AWS's model server receives).
        self.mounts = jobs.private_mounts(self.root)
        self.requests = self.root / "tmp" / "orchard-requests"
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
        code_dir.mkdir(parents=True, exist_ok=True)  # a model.tar.gz with no code/: the server starts bare
        env = {
            **jobs.aws_env(self.region, self.role_arn, "sagemaker.amazonaws.com"),
            **(self.container.get("Environment") or {}),
        }
        command = ["python", jobs.runner(WORKER.name), "/opt/ml/model", _CODE_DIR]
        prepared = containers.prepare(
            image, command, env, self.log.write, code_dir=code_dir, entrypoint=[], install_requirements=True
        )  # as the inference toolkit does
        mounts = {**prepared.mounts, **self.mounts}
        prepared.argv[prepared.argv.index(_CODE_DIR)] = container_path(code_dir, mounts)
        argv, cwd = namespaced(prepared.argv, prepared.cwd, mounts)
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
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
                request = self._stage_local(invocation) if invocation.done else self._stage(invocation)
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
        local = self.requests / invocation.inference_id
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            stored = self._s3_get(invocation.input_location)
            local.write_bytes(stored.value)
        except Exception as error:
            self._write(
                invocation.failure_location,
                f"Failed to download the input {invocation.input_location}: {error}",
            )
            return None
        # No ContentType in the request: the input object's own Content-Type, which is how the SageMaker
        # Python SDK's AsyncPredictor.predict_async() states it (it puts the input with ContentType and
        # sends no ContentType to InvokeEndpointAsync).
        stored_type = stored.metadata.get("Content-Type")
        if not stored_type or stored_type == "binary/octet-stream":  # S3's default: none was given
            stored_type = "application/octet-stream"
        content_type = invocation.content_type or stored_type
        return {
            "id": invocation.inference_id,
            "input": container_path(local, self.mounts),
            "output": container_path(Path(f"{local}.out"), self.mounts),
            "content_type": content_type,
            "accept": invocation.accept,
        }

    def _stage_local(self, invocation: Invocation) -> dict[str, str]:
        local = self.requests / invocation.inference_id
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(invocation.body or b"")
        return {
            "id": invocation.inference_id,
            "input": container_path(local, self.mounts),
            "output": container_path(Path(f"{local}.out"), self.mounts),
            "content_type": invocation.content_type,
            "accept": invocation.accept,
        }

    def invoke(self, body: bytes, content_type: str, accept: str, timeout_s: float) -> dict[str, Any]:
        """A real-time invocation: the model process answers this body; {"ok", "body" | "error"}."""
        invocation = Invocation(
            inference_id=str(uuid.uuid4()),
            input_location="",
            output_location="",
            failure_location="",
            content_type=content_type,
            accept=accept,
            body=body,
            done=threading.Event(),
        )
        self.submit(invocation)
        if not invocation.done.wait(timeout_s):
            self.in_flight.pop(invocation.inference_id, None)
            return {"ok": False, "timeout": True, "error": f"the model did not answer in {timeout_s:.0f} s"}
        return invocation.answer or {"ok": False, "error": "the model process stopped"}

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
            local = self.requests / invocation.inference_id
            body = self._answer_body(local) if result["ok"] else b""
            if body is None:  # the endpoint was deleted mid-answer: its workspace is gone, so is the result
                return
            if invocation.done is not None:
                invocation.answer = {"ok": result["ok"], "body": body, "error": result.get("error", "")}
                invocation.done.set()
            elif result["ok"]:
                self._write(invocation.output_location, body)
            else:
                self._write(invocation.failure_location, model_server_error(result["error"]))
            for path in (local, Path(f"{local}.out")):
                path.unlink(missing_ok=True)

    def _answer_body(self, local: Path) -> bytes | None:
        """The model's answer to one request, or None when the runtime stopped and removed it (DeleteEndpoint
        or the sandbox stopping while the model still answered)."""
        try:
            return Path(f"{local}.out").read_bytes()
        except FileNotFoundError:
            if self.stop.is_set():
                return None
            raise

    def _s3_get(self, uri: str) -> Any:
        bucket, key = s3io.split_uri(uri)
        stored = s3_backends[self.account_id]["aws"].get_object(bucket, key)
        if stored is None:
            raise FileNotFoundError(f"NoSuchKey: {uri}")
        return stored

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
        variant = config.production_variants[0]
        # Real-time and async endpoints alike run their model; a serverless or model-less variant
        # (e.g. inference components) keeps moto's behaviour.
        if variant.get("ModelName") in self._models:
            model = self._models[variant["ModelName"]]
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
    if runtime is None or runtime.async_config is None:
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
        content_type=self.headers.get("X-Amzn-SageMaker-Content-Type") or "",
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


REALTIME_TIMEOUT_S = 60.0  # "Your model containers must respond to requests within 60 seconds"


class ModelError(JsonRESTError):
    """InvokeEndpoint's ModelError (HTTP 424): "Model (owned by the customer in the container) returned 4xx
    or 5xx error code", with OriginalStatusCode, OriginalMessage and LogStreamArn
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html)."""

    code = 424

    def __init__(self, runtime: EndpointRuntime, original_message: str, status: int = 500):
        name, region, account = runtime.endpoint.endpoint_name, runtime.region, runtime.account_id
        group = ENDPOINT_GROUP.format(name=name)
        # AWS's wording, e.g. aws/amazon-sagemaker-examples issue #407.
        message = (
            f'Received server error ({status}) from primary with message "{original_message}". See '
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logEventViewer:group={group} in account {account} for more information."
        )
        super().__init__("ModelError", message)
        self.description = json.dumps(
            {
                "__type": "ModelError",
                "message": message,
                "OriginalStatusCode": status,
                "OriginalMessage": original_message,
                "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}"
                f":log-stream:{runtime.log.stream}",
            }
        )


def _invoke_endpoint(self: runtime_responses.SageMakerRuntimeResponse) -> Any:
    """InvokeEndpoint: the endpoint's model handler answers the body (never moto's canned b'body')."""
    endpoint_name = unquote(self.path.split("/")[2])
    runtime = runtime_of(self.current_account, self.region, endpoint_name)
    if runtime is None:
        backend = moto_sm.sagemaker_backends[self.current_account][self.region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            message = f"Endpoint {endpoint_name} of account {self.current_account} not found."
        else:  # Failed, deleted under us, or a variant with no model: never moto's canned answer
            message = (
                f"Endpoint {endpoint_name} is {endpoint.endpoint_status} and runs no model in the sandbox"
                f"{': ' + endpoint.failure_reason if getattr(endpoint, 'failure_reason', None) else ''}."
            )
        raise JsonRESTError("ValidationError", message)
    if runtime.async_config is not None:
        # "The presence of an AsyncInferenceConfig ... implies that the endpoint can only receive
        # asynchronous invocations" (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html)
        raise JsonRESTError(
            "ValidationError",
            f"Endpoint {endpoint_name} is an asynchronous endpoint: call InvokeEndpointAsync with an "
            "InputLocation in S3.",
        )
    if runtime.endpoint.endpoint_status != "InService":
        reason = getattr(runtime.endpoint, "failure_reason", None)
        raise JsonRESTError(
            "ValidationError",
            f"Endpoint {endpoint_name} is {runtime.endpoint.endpoint_status}, not InService"
            f"{': ' + reason if reason else '.'}",
        )
    content_type = self.headers.get("Content-Type") or "application/octet-stream"
    accept = self.headers.get("Accept") or "application/json"
    body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
    answer = runtime.invoke(body, content_type, accept, REALTIME_TIMEOUT_S)
    if not answer["ok"]:
        if answer.get("timeout"):
            raise ModelError(runtime, model_server_error(answer["error"], 504), 504)
        raise ModelError(runtime, model_server_error(answer["error"]))
    headers = {"Content-Type": accept, "x-Amzn-Invoked-Production-Variant": runtime.variant}
    return 200, headers, answer["body"]


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
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint
