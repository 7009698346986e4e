"""SageMaker Neo compilation jobs that really compile: include/edge_compiler/ (Apache TVM) as a job.

moto records a compilation job as COMPLETED at once, with a fixed digest and no output. Here it is
INPROGRESS while the compiler runs in its own environment (the image `orchard/edge-compiler`), then
COMPLETED with ModelArtifacts (`<S3OutputLocation>/<model>-<target>.tar.gz`, Neo's naming) and
ModelDigests (sha256 of that archive), FAILED with the compiler's FailureReason, or STOPPED
(StopCompilationJob, or StoppingCondition.MaxRuntimeInSeconds reached). Logs go to
/aws/sagemaker/CompilationJobs, where Neo writes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow
from moto.sagemaker import models as moto_sm
from moto.sagemaker import responses as moto_sm_responses
from moto.sagemaker.exceptions import ValidationError

from local_aws import containers, images, jobs, s3io
from local_aws.cloudwatch import LogStream
from local_aws.process import run_process

log = logging.getLogger(__name__)

COMPILATION_GROUP = "/aws/sagemaker/CompilationJobs"
COMPILER_IMAGE = "orchard/edge-compiler:latest"
DEFAULT_MAX_RUNTIME_S = 900


class SandboxCompilationJob(moto_sm.CompilationJob):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.compilation_job_status = "INPROGRESS"
        self.compilation_start_time = utcnow()
        self.compilation_end_time = None
        self.model_artifacts = None
        self.model_digests = None
        self.inference_image = None
        self.derived_information = None
        arn_parts = self.arn.split(":")
        self._account, self._region = arn_parts[4], arn_parts[3]
        self._stop = jobs.new_stop_signal()

    def start(self) -> None:
        threading.Thread(target=self._execute, daemon=True, name=f"neo-{self.compilation_job_name}").start()

    def stop_requested(self) -> None:
        if self.compilation_job_status in ("INPROGRESS", "STARTING"):
            self.compilation_job_status = "STOPPING"
            self._stop.set()

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in super().describe().items() if v is not None}

    def summary(self) -> dict[str, Any]:
        """ListCompilationJobs' CompilationJobSummary. moto reads TargetPlatform["Accelerator"], which
        TargetPlatform leaves optional (Os and Arch are required), so a job for a CPU platform made the
        whole list answer 500. CompilationTargetPlatformAccelerator is optional in the summary too
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CompilationJobSummary.html)."""
        summary = {
            "CompilationJobName": self.compilation_job_name,
            "CompilationJobArn": self.arn,
            "CreationTime": self.creation_time,
            "CompilationStartTime": self.compilation_start_time,
            "CompilationEndTime": self.compilation_end_time,
            "LastModifiedTime": self.last_modified_time,
            "CompilationJobStatus": self.compilation_job_status,
        }
        platform = self.output_config.get("TargetPlatform") or {}
        if self.output_config.get("TargetDevice"):
            summary["CompilationTargetDevice"] = self.output_config["TargetDevice"]
        for key in ("Os", "Arch", "Accelerator"):
            if platform.get(key):
                summary[f"CompilationTargetPlatform{key}"] = platform[key]
        return {k: v for k, v in summary.items() if v is not None}

    def _execute(self) -> None:
        root = jobs.workspace("compilation", self.compilation_job_name)
        try:
            self._compile(root)
        except Exception as error:  # never leave a job INPROGRESS because the sandbox broke
            log.warning("compilation job %s failed in the sandbox: %s", self.compilation_job_name, error)
            self._end("FAILED", f"ClientError: {error}"[:1024])
        finally:
            jobs.release(self._stop)
            jobs.discard(root)

    def _compile(self, root: Path) -> None:
        input_config = self.input_config or {}
        stream = LogStream(self._account, self._region, COMPILATION_GROUP, self.compilation_job_name)
        tail: list[str] = []

        def log_line(line: str) -> None:
            stream.write(line)
            tail[:] = [*tail[-9:], line.rstrip("\n")]

        try:
            archive = s3io.download_file(input_config["S3Uri"], root / "input" / "model.tar.gz")
        except Exception as error:
            raise RuntimeError(
                f"could not download InputConfig.S3Uri {input_config.get('S3Uri')}: {error}"
            ) from error
        target = {
            k: self.output_config[k] for k in ("TargetDevice", "TargetPlatform") if self.output_config.get(k)
        }
        out, failure = root / "output", root / "failure"
        command = [
            "--model",
            str(archive),
            "--framework",
            input_config.get("Framework", ""),
            "--data-input-config",
            input_config.get("DataInputConfig", "{}"),
            "--target",
            json.dumps(target),
            "--output-dir",
            str(out),
            "--failure-file",
            str(failure),
        ]
        job_env = jobs.aws_env(self._region, self.role_arn, "sagemaker.amazonaws.com")  # the job's role
        container = containers.prepare(
            images.resolve(COMPILER_IMAGE),
            command,
            job_env,
            log_line,
            entrypoint=["python3", "/opt/program/compile.py"],
        )
        max_runtime = (self.stopping_condition or {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_S)
        outcome = run_process(
            container.argv,
            cwd=container.cwd,
            env=container.env,
            log=log_line,
            stop=self._stop,
            timeout_s=float(max_runtime),
            mounts=container.mounts,
        )
        if outcome.stopped or outcome.timed_out:
            return self._end("STOPPED", "MaxRuntimeExceeded" if outcome.timed_out else None)
        if outcome.exit_code != 0:
            reason = failure.read_text() if failure.exists() else "ClientError: " + " | ".join(tail[-3:])
            return self._end("FAILED", reason[:1024])
        self._upload(out, root, Path(input_config["S3Uri"]).name, target)
        self._end("COMPLETED", None)

    def _upload(self, out: Path, root: Path, input_name: str, target: dict) -> None:
        stem = input_name.removesuffix(".tar.gz").removesuffix(".tgz")
        target_name = (
            target.get("TargetDevice")
            or "{Os}_{Arch}".format(**{"Os": "", "Arch": "", **target["TargetPlatform"]}).lower()
        )
        archive = s3io.tar_dir(out, root / "compiled.tar.gz")
        uri = f"{self.output_config['S3OutputLocation'].rstrip('/')}/{stem}-{target_name}.tar.gz"
        s3io.upload_file(archive, uri)
        self.model_artifacts = {"S3ModelArtifacts": uri}
        self.model_digests = {"ArtifactDigest": hashlib.sha256(archive.read_bytes()).hexdigest()}
        metadata = json.loads((out / "compiled.meta").read_text())  # Neo's metadata (include/edge_compiler)
        inputs = {i["name"]: i["shape"] for i in metadata["Model"]["Inputs"]}
        self.derived_information = {"DerivedDataInputConfig": json.dumps(inputs)}

    def _end(self, status: str, reason: str | None) -> None:
        self.compilation_end_time = self.last_modified_time = utcnow()
        if reason:
            self.failure_reason = reason
        self.compilation_job_status = status


def _create_and_start(create: Any) -> Any:
    def create_compilation_job(self: moto_sm_responses.SageMakerResponse) -> Any:
        _validate_request(self._get_param("InputConfig") or {}, self._get_param("OutputConfig") or {})
        result = create(self)
        self.sagemaker_backend.compilation_jobs[self._get_param("CompilationJobName")].start()
        return result

    return create_compilation_job


def _validate_request(input_config: dict, output_config: dict) -> None:
    """What Neo's API refuses before a job exists."""
    if not output_config.get("TargetDevice") and not output_config.get("TargetPlatform"):
        raise ValidationError(message="OutputConfig needs TargetDevice or TargetPlatform")
    try:
        json.loads(input_config.get("DataInputConfig") or "{}")
    except ValueError as error:
        raise ValidationError(message=f"InputConfig.DataInputConfig is not valid JSON: {error}") from error
    if output_config.get("CompilerOptions"):
        try:
            json.loads(output_config["CompilerOptions"])
        except ValueError as error:
            raise ValidationError(
                message=f"OutputConfig.CompilerOptions is not valid JSON: {error}"
            ) from error


def _stop_compilation_job(self: moto_sm_responses.SageMakerResponse) -> Any:
    name = self._get_param("CompilationJobName")
    job = self.sagemaker_backend.compilation_jobs.get(name)
    if job is None:
        raise ValidationError(message=f"Could not find compilation job '{name}'.")
    job.stop_requested()
    return moto_sm_responses.EmptyResult()


def install() -> None:
    moto_sm.CompilationJob = SandboxCompilationJob
    responses = moto_sm_responses.SageMakerResponse
    responses.create_compilation_job = _create_and_start(responses.create_compilation_job)
    responses.stop_compilation_job = _stop_compilation_job
