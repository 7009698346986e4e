"""SageMaker training, processing and transform jobs that really run their code.

moto creates these jobs already Completed. Here a job is InProgress while its container runs
(SecondaryStatus Starting → Downloading → Training → Uploading → Completed), and ends Completed,
Failed (with FailureReason) or Stopped, with ModelArtifacts, final metrics and logs in
/aws/sagemaker/<Kind>Jobs as AWS writes them. Each job's process runs in its own mount namespace with
its workspace's opt/ml bound at the real `/opt/ml` (local_aws/process.py), so arguments, SM_* values and
job code use the paths AWS defines:
- training: "How Amazon SageMaker AI Provides Training Information"
  https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
- processing: "How Amazon SageMaker Processing Runs Your Processing Container Image"
  https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-run-image.html and "How Amazon SageMaker
  Processing Configures Your Processing Container" (/opt/ml/config/processingjobconfig.json and
  resourceconfig.json)
  https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow
from moto.sagemaker import models as moto_sm
from moto.sagemaker import responses as moto_sm_responses
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError

from local_aws import containers, images, instance_metrics, jobs, s3io
from local_aws.cloudwatch import PROCESSING_GROUP, TRAINING_GROUP, TRANSFORM_GROUP, LogStream
from local_aws.process import Outcome, container_path, run_process

log = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
SCRIPT_MODE_KEYS = ("sagemaker_program", "sagemaker_submit_directory")


def _now() -> datetime:
    return utcnow()  # naive UTC, as moto stores every other time of the job


class _SandboxJob:
    """Started by the API call once moto has stored the job and the request's Environment."""

    _run: _RunningJob

    def start(self, environment: dict[str, str] | None) -> None:
        self.environment = {**(getattr(self, "environment", None) or {}), **(environment or {})}
        threading.Thread(target=self._execute, daemon=True, name=f"sagemaker-{self._run.name}").start()

    def _execute(self) -> None:
        raise NotImplementedError

    def gen_response_object(self) -> dict[str, Any]:
        """moto's describe response from the job's attributes, leaving out the sandbox's own (`_x`)."""
        response: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if not key.startswith("_"):
                response[self.camelCase(key) if "_" in key else key[0].upper() + key[1:]] = value
        return response


class _RunningJob:
    """What every running SageMaker job keeps outside moto's response attributes."""

    def __init__(self, kind: str, name: str, account_id: str, region: str, group: str):
        self.kind, self.name, self.account_id, self.region, self.group = kind, name, account_id, region, group
        self.stop = jobs.new_stop_signal()
        self.root = jobs.workspace(kind, name)
        self.mounts = jobs.private_mounts(self.root)  # /opt/ml, /tmp; more for paths outside /opt/ml

    def host_path(self, container_path: str) -> Path:
        """The host folder behind a container path: under /opt/ml it is the workspace's, any other
        (e.g. a CheckpointConfig.LocalPath) gets its own folder mounted at that path."""
        path = Path(container_path)
        if not path.is_absolute():
            raise ValueError(f"{container_path!r} is not an absolute path in the container")
        if path == Path(OPT_ML) or Path(OPT_ML) in path.parents:
            host = self.root.joinpath("opt", "ml", *path.relative_to(OPT_ML).parts)
        else:
            host = self.mounts.get(str(path)) or self.root / "mounts" / str(len(self.mounts))
            self.mounts[str(path)] = host
        host.mkdir(parents=True, exist_ok=True)
        return host

    def log_stream(self, host: str = "algo-1") -> LogStream:
        return LogStream(self.account_id, self.region, self.group, f"{self.name}/{host}-{int(time.time())}")

    def opt_ml(self, *parts: str) -> Path:
        path = self.root.joinpath("opt", "ml", *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def _failure_reason(outcome: Outcome, output_dir: Path, tail: list[str]) -> str:
    """SageMaker's convention: the container's /opt/ml/output/failure file, else the last log lines."""
    failure_file = output_dir / "failure"
    if failure_file.exists() and failure_file.read_text().strip():
        return failure_file.read_text().strip()[:1024]
    last = tail[-5:]
    error = next((line for line in reversed(tail) if ERROR_LINE.match(line)), None)
    if error and error not in last:  # the exception line (e.g. ModuleNotFoundError: ...) always shows
        last = [error, *last[-4:]]
    message = "\n".join(last) or "no output"
    return f'AlgorithmError: ExecuteUserScriptError:\nExitCode {outcome.exit_code}\nErrorMessage "{message}"'[
        :1024
    ]


class _Tail:
    """Keeps the last lines a job printed, and applies the job's metric definitions to each line."""

    def __init__(self, sink: Callable[[str], None], metric_definitions: list[dict[str, str]] | None = None):
        self.sink = sink
        self.lines: list[str] = []
        self.metrics: dict[str, float] = {}
        self._patterns = [(m["Name"], re.compile(m["Regex"])) for m in metric_definitions or []]

    def __call__(self, line: str) -> None:
        self.sink(line)
        self.lines = [*self.lines[-19:], line.rstrip("\n")]
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if match:
                try:
                    self.metrics[name] = float(match.group(1))
                except (IndexError, ValueError):
                    pass


# --------------------------------------------------------------------------------------- training


class SandboxTrainingJob(_SandboxJob, moto_sm.FakeTrainingJob):
    def __init__(self, *args: Any, **kwargs: Any):
        user_metrics = list(kwargs["algorithm_specification"].get("MetricDefinitions", []))
        super().__init__(*args, **kwargs)
        self.algorithm_specification["MetricDefinitions"] = user_metrics  # moto overwrites them
        self.training_job_status = "InProgress"
        self.secondary_status = "Starting"
        self.secondary_status_transitions = []
        self.final_metric_data_list = []
        self.model_artifacts = None
        self.training_end_time = None
        self.failure_reason = None
        self._set_secondary("Starting", "Launching requested ML instances")
        arn_parts = self.arn.split(":")
        self._run = _RunningJob(
            "training", self.training_job_name, arn_parts[4], arn_parts[3], TRAINING_GROUP
        )

    def _set_secondary(self, status: str, message: str) -> None:
        now = _now()
        if self.secondary_status_transitions:
            self.secondary_status_transitions[-1]["EndTime"] = now
        self.secondary_status_transitions.append(
            {"Status": status, "StartTime": now, "StatusMessage": message}
        )
        self.secondary_status = status
        self.last_modified_time = now

    def stop_requested(self) -> None:
        if self.training_job_status == "InProgress":
            self.training_job_status = "Stopping"
            self._set_secondary("Stopping", "Stopping the training job")
            self._run.stop.set()

    def _execute(self) -> None:
        run = self._run
        try:
            self._set_secondary("Downloading", "Downloading input data")
            # on its instances from here: AWS's TrainingStartTime, the bill's start, comes before the data and
            # container download ("The start time in CloudWatch Logs might be later than this time. The
            # difference is due to the time it takes to download the training data and to the size of the
            # training container", DescribeTrainingJob, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html)
            self.training_start_time = _now()
            try:
                self._download_inputs()
            except Exception as error:
                raise RuntimeError(f"Data download failed: {error}") from error
            image = images.resolve(self.algorithm_specification.get("TrainingImage", ""))
            self._set_secondary("Training", "Training image download completed. Training in progress.")
            outcome, tail = self._train(image)
            self._finish(outcome, tail)
        except Exception as error:
            log.exception("training job %s failed in the sandbox", self.training_job_name)
            self._end("Failed", "Failed", f"ClientError: {error}"[:1024])
        finally:
            jobs.release(run.stop)
            jobs.discard(run.root)

    def _download_inputs(self) -> None:
        for channel in self.input_data_config or []:
            source = channel["DataSource"]["S3DataSource"]
            s3io.require_same_region(source["S3Uri"], self._run.region)
            s3io.download_prefix(source["S3Uri"], self._run.opt_ml("input", "data", channel["ChannelName"]))
        checkpoint_uri = (self.checkpoint_config or {}).get("S3Uri")
        if checkpoint_uri:  # a resumed (e.g. spot-interrupted) job finds its earlier checkpoints
            s3io.download_prefix(checkpoint_uri, self._checkpoint_dir())

    def _checkpoint_dir(self) -> Path:
        return self._run.host_path((self.checkpoint_config or {}).get("LocalPath", "/opt/ml/checkpoints"))

    def _train(self, image: images.JobImage) -> tuple[Outcome, _Tail]:
        run = self._run
        hyperparameters = dict(self.hyper_parameters or {})
        tail = _Tail(run.log_stream().write, self.algorithm_specification.get("MetricDefinitions"))
        env = {
            **jobs.aws_env(run.region, self.role_arn, "sagemaker.amazonaws.com"),
            **self._environment(hyperparameters),
        }
        self._write_config_files(hyperparameters, json.loads(env["SM_HOSTS"]))
        if image.is_framework:  # script mode: the framework image runs the submitted program
            code_dir = self._script_mode_code(hyperparameters)
            program = _decode(hyperparameters["sagemaker_program"])
            command = ["python", program, *_user_args(hyperparameters)]
            container = containers.prepare(
                image, command, env, tail, code_dir=code_dir, install_requirements=True
            )  # as the training toolkit does
        else:
            container = _byo_container(image, env, tail)
        max_runtime = (self.stopping_condition or {}).get("MaxRuntimeInSeconds")
        self._checkpoint_dir()  # its mount point exists before the job starts
        instance_metrics.publish_for(self)  # CPU / memory in CloudWatch while the job runs, as SageMaker does
        outcome = run_process(
            container.argv,
            cwd=container.cwd,
            env=container.env,
            log=tail,
            stop=run.stop,
            timeout_s=float(max_runtime) if max_runtime else None,
            mounts={**container.mounts, **run.mounts},
        )
        return outcome, tail

    def _script_mode_code(self, hyperparameters: dict[str, str]) -> Path:
        missing = [key for key in SCRIPT_MODE_KEYS if key not in hyperparameters]
        if missing:
            raise ValueError(
                f"{self.algorithm_specification.get('TrainingImage')} is an AWS framework image: script mode "
                f"needs the hyperparameters {', '.join(missing)} (the entry point and the S3 URI of sourcedir.tar.gz)"
            )
        code_dir = self._run.opt_ml("code")
        archive = s3io.download_file(
            _decode(hyperparameters["sagemaker_submit_directory"]), self._run.root / "sourcedir.tar.gz"
        )
        s3io.untar(archive, code_dir)
        return code_dir

    def _environment(self, hyperparameters: dict[str, str]) -> dict[str, str]:
        ml = OPT_ML
        channels = [c["ChannelName"] for c in self.input_data_config or []]
        # One process runs whatever InstanceCount says: a list of N hosts would leave distributed code
        # waiting for peers that never start. Billing still counts every instance asked for.
        hosts = ["algo-1"]
        user_hps = {k: _decode(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
        env = {
            "TRAINING_JOB_NAME": self.training_job_name,
            "TRAINING_JOB_ARN": self.arn,
            "SM_MODEL_DIR": f"{ml}/model",
            "SM_INPUT_DIR": f"{ml}/input",
            "SM_INPUT_CONFIG_DIR": f"{ml}/input/config",
            "SM_OUTPUT_DIR": f"{ml}/output",
            "SM_OUTPUT_DATA_DIR": f"{ml}/output/data",
            "SM_OUTPUT_INTERMEDIATE_DIR": f"{ml}/output/intermediate",
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(user_hps),
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": hosts[0],
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_CURRENT_INSTANCE_TYPE": self.resource_config.get("InstanceType", ""),
            "SM_USER_ARGS": json.dumps(_user_args(hyperparameters)),
            "SM_MODULE_DIR": _decode(hyperparameters.get("sagemaker_submit_directory", "")),
            "SM_USER_ENTRY_POINT": _decode(hyperparameters.get("sagemaker_program", "")),
            # Not set by AWS (code there uses the fixed /opt/ml/checkpoints); set here so code can find it.
            "SM_CHECKPOINT_DIR": (self.checkpoint_config or {}).get("LocalPath", f"{ml}/checkpoints"),
        }
        for channel in channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = f"{ml}/input/data/{channel}"
        for key, value in user_hps.items():
            env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        env.update(self.environment)
        return env

    def _write_config_files(self, hyperparameters: dict[str, str], hosts: list[str]) -> None:
        config = self._run.opt_ml("input", "config")
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": hosts[0], "hosts": hosts}))
        input_config = {
            c["ChannelName"]: {k: v for k, v in c.items() if k != "ChannelName"}
            for c in self.input_data_config or []
        }
        (config / "inputdataconfig.json").write_text(json.dumps(input_config))
        for name in ("model", "output/data", "output/intermediate"):
            self._run.opt_ml(*name.split("/"))

    def _finish(self, outcome: Outcome, tail: _Tail) -> None:
        self.final_metric_data_list = [
            {"MetricName": name, "Value": value, "Timestamp": _now()} for name, value in tail.metrics.items()
        ]
        checkpoint_uri = (self.checkpoint_config or {}).get("S3Uri")
        if checkpoint_uri:
            s3io.upload_dir(self._checkpoint_dir(), checkpoint_uri)
        if outcome.stopped:
            return self._end("Stopped", "Stopped", None)
        if outcome.exit_code != 0 and not outcome.timed_out:
            return self._end(
                "Failed", "Failed", _failure_reason(outcome, self._run.opt_ml("output"), tail.lines)
            )
        self._set_secondary("Uploading", "Uploading generated training model")
        self._upload_outputs()
        if outcome.timed_out:
            return self._end("Stopped", "MaxRuntimeExceeded", None)
        self._end("Completed", "Completed", None)

    def _upload_outputs(self) -> None:
        base = f"{self.output_data_config['S3OutputPath'].rstrip('/')}/{self.training_job_name}/output"
        model_tar = s3io.tar_dir(self._run.opt_ml("model"), self._run.root / "model.tar.gz")
        s3io.upload_file(model_tar, f"{base}/model.tar.gz")
        self.model_artifacts = {"S3ModelArtifacts": f"{base}/model.tar.gz"}
        output_data = self._run.opt_ml("output", "data")
        if any(output_data.iterdir()):
            s3io.upload_file(
                s3io.tar_dir(output_data, self._run.root / "output.tar.gz"), f"{base}/output.tar.gz"
            )

    def _end(self, status: str, secondary: str, reason: str | None) -> None:
        self.training_end_time = _now()
        started = self.training_start_time or self.creation_time
        seconds = max(1, int((self.training_end_time - started).total_seconds()))
        self.training_time_in_seconds = seconds
        # Per instance, as AWS reports it: the bill is BillableTimeInSeconds x InstanceCount.
        self.billable_time_in_seconds = seconds
        if reason:
            self.failure_reason = reason
        self._set_secondary(secondary, reason.splitlines()[0] if reason else f"Training job {status.lower()}")
        self.training_job_status = status


def _byo_container(
    image: images.JobImage, env: dict[str, str], log_line: Callable[[str], None]
) -> containers.Container:
    """A bring-your-own training image runs as `docker run <image> train`."""
    spec = containers.read_dockerfile(image.folder) if image.folder else containers.DockerfileSpec()
    command = ["train"] if spec.entrypoint else (spec.cmd or ["train"])
    return containers.prepare(image, command, env, log_line)


def _decode(value: str) -> Any:
    """The SageMaker Python SDK JSON-encodes hyperparameter values; plain strings pass through."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _user_args(hyperparameters: dict[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in hyperparameters.items():
        if key.startswith("sagemaker_"):
            continue
        decoded = _decode(value)
        args += [f"--{key}", decoded if isinstance(decoded, str) else json.dumps(decoded)]
    return args


# ------------------------------------------------------------------------------------- processing


class SandboxProcessingJob(_SandboxJob, moto_sm.FakeProcessingJob):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.processing_job_status = "InProgress"
        self.processing_end_time = None
        self.processing_start_time = _now()
        self.failure_reason = None
        self.exit_message = None
        self.environment: dict[str, str] = {}
        arn_parts = self.arn.split(":")
        self._run = _RunningJob(
            "processing", self.processing_job_name, arn_parts[4], arn_parts[3], PROCESSING_GROUP
        )

    def stop_requested(self) -> None:
        if self.processing_job_status == "InProgress":
            self.processing_job_status = "Stopping"
            self._run.stop.set()

    def _execute(self) -> None:
        run = self._run
        try:
            for item in self.processing_inputs or []:
                source = item.get("S3Input")
                if source:
                    s3io.require_same_region(source["S3Uri"], run.region)
                    local = run.host_path(_processing_path(source["LocalPath"]))
                    s3io.download_prefix(source["S3Uri"], local)
            outcome, tail = self._process()
            if outcome.stopped:
                return self._end("Stopped", None)
            if outcome.exit_code != 0 or outcome.timed_out:
                reason = _failure_reason(outcome, run.opt_ml("output"), tail.lines)
                return self._end("Failed", "MaxRuntimeExceeded" if outcome.timed_out else reason)
            for item in (self.processing_output_config or {}).get("Outputs", []):
                target = item.get("S3Output")
                if target:
                    s3io.upload_dir(run.host_path(target["LocalPath"]), target["S3Uri"])
            self._end("Completed", None)
        except Exception as error:
            log.exception("processing job %s failed in the sandbox", self.processing_job_name)
            self._end("Failed", f"ClientError: {error}"[:1024])
        finally:
            jobs.release(run.stop)
            jobs.discard(run.root)

    def _process(self) -> tuple[Outcome, _Tail]:
        run, spec = self._run, self.app_specification
        image = images.resolve(spec.get("ImageUri", ""))
        tail = _Tail(run.log_stream().write)
        env = {**jobs.aws_env(run.region, self.role_arn, "sagemaker.amazonaws.com"), **self.environment}
        entrypoint = list(spec.get("ContainerEntrypoint", []))
        arguments = list(spec.get("ContainerArguments", []))
        code_dir = _script_folder(run, entrypoint + arguments) if image.is_framework else None
        container = containers.prepare(image, arguments, env, tail, code_dir=code_dir, entrypoint=entrypoint)
        for item in (self.processing_output_config or {}).get("Outputs", []):
            if item.get("S3Output"):  # the output folders exist (empty) when the container starts
                run.host_path(item["S3Output"]["LocalPath"])
        self._write_config_files()
        max_runtime = (self.stopping_condition or {}).get("MaxRuntimeInSeconds")
        outcome = run_process(
            container.argv,
            cwd=container.cwd,
            env=container.env,
            log=tail,
            stop=run.stop,
            timeout_s=float(max_runtime) if max_runtime else None,
            mounts={**container.mounts, **run.mounts},
        )
        return outcome, tail

    def _write_config_files(self) -> None:
        config = self._run.opt_ml("config")
        job = {
            "ProcessingJobArn": self.arn,
            "ProcessingJobName": self.processing_job_name,
            "AppSpecification": self.app_specification,
            "Environment": self.environment,
            "ProcessingInputs": self.processing_inputs or [],
            "ProcessingOutputConfig": self.processing_output_config or {},
            "RoleArn": self.role_arn,  # ProcessingResources too on AWS: moto does not keep it
            "StoppingCondition": self.stopping_condition or {},
        }
        (config / "processingjobconfig.json").write_text(json.dumps(job, default=str))
        hosts = {"current_host": "algo-1", "hosts": ["algo-1"]}
        (config / "resourceconfig.json").write_text(json.dumps(hosts))

    def _end(self, status: str, reason: str | None) -> None:
        self.processing_end_time = self.last_modified_time = _now()
        if reason:
            self.failure_reason = reason
            self.exit_message = reason.splitlines()[-1][:1024]
        self.processing_job_status = status


def _processing_path(local_path: str) -> str:
    """A ProcessingS3Input's LocalPath "must begin with /opt/ml/processing/" (SageMaker API reference,
    ProcessingS3Input:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html)."""
    if not local_path.startswith("/opt/ml/processing/"):
        raise ValueError(f"LocalPath {local_path!r} must begin with /opt/ml/processing/")
    return local_path


def _script_folder(run: _RunningJob, argv: list[str]) -> Path:
    """A framework processing image runs a script given as an input (e.g. .../input/code/prep.py, or
    the SDK FrameworkProcessor's .../input/entrypoint/runproc.sh): its host folder."""
    for token in argv:
        if token.endswith((".py", ".sh")) and token.startswith(OPT_ML + "/"):
            script = run.host_path(str(Path(token).parent)) / Path(token).name
            if script.is_file():
                return script.parent
    raise ValueError(
        "an AWS framework processing image needs its script as a ProcessingInput and its path in "
        "ContainerEntrypoint, e.g. ['python3', '/opt/ml/processing/input/code/prepare.py']"
    )


# -------------------------------------------------------------------------------------- transform


class SandboxTransformJob(_SandboxJob, moto_sm.FakeTransformJob):
    """Batch transform: the model's inference handler applied to every input object."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.transform_job_status = "InProgress"
        self.transform_end_time = None
        self.failure_reason = None
        arn_parts = self.arn.split(":")
        self._run = _RunningJob(
            "transform", self.transform_job_name, arn_parts[4], arn_parts[3], TRANSFORM_GROUP
        )
        self._backend = moto_sm.sagemaker_backends[arn_parts[4]][arn_parts[3]]

    def _execute(self) -> None:
        run = self._run
        try:
            model = self._backend.describe_model(self.model_name)
            container = model.primary_container or model.containers[0]
            source = self.transform_input["DataSource"]["S3DataSource"]["S3Uri"]
            inputs = run.opt_ml("transform", "input")
            s3io.download_prefix(source, inputs)
            outputs = run.opt_ml("transform", "output")
            outcome, tail = run_inference(
                run,
                container,
                sorted(p for p in inputs.rglob("*") if p.is_file()),
                inputs,
                outputs,
                content_type=self.transform_input.get("ContentType", "application/json"),
                accept=self.transform_output.get("Accept", "application/json"),
                split_lines=self.transform_input.get("SplitType") == "Line",
                extra_env=self.environment or {},
            )
            if outcome.exit_code != 0:
                raise RuntimeError(_failure_reason(outcome, run.opt_ml("output"), tail.lines))
            s3io.upload_dir(outputs, self.transform_output["S3OutputPath"])
            self._end("Completed", None)
        except Exception as error:
            log.warning("transform job %s failed: %s", self.transform_job_name, error)
            self._end("Failed", str(error)[:1024])
        finally:
            jobs.release(run.stop)
            jobs.discard(run.root)

    def _end(self, status: str, reason: str | None) -> None:
        self.transform_end_time = self.last_modified_time = _now()
        if reason:
            self.failure_reason = reason
        self.transform_job_status = status


INFERENCE_RUNNER = Path(__file__).with_name("inference_runner.py")
_CODE_DIR = "<code dir>"  # filled in once prepare() says where the image's code folder is mounted


def run_inference(
    run: _RunningJob,
    model_container: dict[str, Any],
    input_files: list[Path],
    input_root: Path,
    output_root: Path,
    *,
    content_type: str,
    accept: str,
    split_lines: bool = False,
    extra_env: dict[str, str] | None = None,
) -> tuple[Outcome, _Tail]:
    """Load the model once in its image's environment and answer each input file with an output file."""
    image = images.resolve(model_container["Image"])
    model_dir = run.opt_ml("model")
    if model_container.get("ModelDataUrl"):
        s3io.untar(s3io.download_file(model_container["ModelDataUrl"], run.root / "model.tar.gz"), model_dir)
    env = {**jobs.aws_env(run.region), **(model_container.get("Environment") or {}), **(extra_env or {})}
    code_dir = image.folder or (model_dir / "code")
    tail = _Tail(run.log_stream().write)
    # The model process sees its own filesystem: every path it is given is a container path.
    mounts = dict(run.mounts)
    requests = [
        {
            "input": container_path(p, mounts),
            "output": container_path(output_root / f"{p.relative_to(input_root)}.out", mounts),
        }
        for p in input_files
    ]
    request_file = run.opt_ml("sandbox") / "requests.json"
    request_file.write_text(json.dumps(requests))
    command = [
        "python",
        jobs.runner(INFERENCE_RUNNER.name),
        "--model-dir",
        "/opt/ml/model",
        "--code-dir",
        _CODE_DIR,
        "--requests",
        container_path(request_file, mounts),
        "--content-type",
        content_type,
        "--accept",
        accept,
    ]
    if split_lines:
        command.append("--split-lines")
    # The framework inference toolkits install code/requirements.txt before loading the model.
    container = containers.prepare(
        image, command, env, tail, code_dir=code_dir, entrypoint=[], install_requirements=True
    )
    mounts.update(container.mounts)  # the image's folder at its WORKDIR, if it has one
    container.argv[container.argv.index(_CODE_DIR)] = container_path(code_dir, mounts)
    outcome = run_process(
        container.argv, cwd=container.cwd, env=container.env, log=tail, stop=run.stop, mounts=mounts
    )
    return outcome, tail


# ---------------------------------------------------------------------------------------- install


def _stop_training_job(self: moto_sm_responses.SageMakerResponse) -> Any:
    name = self._get_param("TrainingJobName")
    job = self.sagemaker_backend.training_jobs.get(name)
    if job is None:
        raise ValidationError(message=f"Requested resource not found: training job {name!r}")
    job.stop_requested()
    return moto_sm_responses.EmptyResult()


def _unique(create: Callable[..., Any], registry: str, name_arg: str) -> Callable[..., Any]:
    """AWS refuses a second job with a name already used in the account and region."""

    def create_unique(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get(name_arg)
        if name in getattr(self, registry):
            raise ResourceInUseException(
                message=f"Job name must be unique within an AWS account and region, and a job with this name already exists ({name})"
            )
        return create(self, *args, **kwargs)

    return create_unique


# Request fields moto's create_* does not store but Describe* returns: DescribeProcessingJob answers
# ProcessingResources (Required in its response syntax; the SDK's Processor.run(logs=True) reads
# ProcessingResources.ClusterConfig.InstanceCount), see
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeProcessingJob.html
_DROPPED_BY_MOTO = {"processing_jobs": ("ProcessingResources",)}


def _starting(create: Callable[..., Any], registry: str, name_param: str) -> Callable[..., Any]:
    """Wrap an API call: moto stores the job; then it starts with the request's Environment."""

    def create_and_start(self: moto_sm_responses.SageMakerResponse) -> Any:
        result = create(self)
        job = getattr(self.sagemaker_backend, registry)[self._get_param(name_param)]
        for field in _DROPPED_BY_MOTO.get(registry, ()):  # request fields AWS describes back
            setattr(job, re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower(), self._get_param(field))
        job.start(self._get_param("Environment"))
        return result

    return create_and_start


def install() -> None:
    responses = moto_sm_responses.SageMakerResponse
    responses.create_training_job = _starting(
        responses.create_training_job, "training_jobs", "TrainingJobName"
    )
    responses.create_processing_job = _starting(
        responses.create_processing_job, "processing_jobs", "ProcessingJobName"
    )
    responses.create_transform_job = _starting(
        responses.create_transform_job, "transform_jobs", "TransformJobName"
    )
    moto_sm.FakeTrainingJob = SandboxTrainingJob
    moto_sm.FakeProcessingJob = SandboxProcessingJob
    moto_sm.FakeTransformJob = SandboxTransformJob
    backend = moto_sm.SageMakerModelBackend
    backend.create_training_job = _unique(backend.create_training_job, "training_jobs", "training_job_name")
    backend.create_processing_job = _unique(
        backend.create_processing_job, "processing_jobs", "processing_job_name"
    )
    backend.create_transform_job = _unique(
        backend.create_transform_job, "transform_jobs", "transform_job_name"
    )
    moto_sm_responses.SageMakerResponse.stop_training_job = _stop_training_job
    original_stop_processing = backend.stop_processing_job

    def stop_processing_job(self: Any, processing_job_name: str) -> None:
        job = self.processing_jobs.get(processing_job_name)
        if job is None:
            return original_stop_processing(self, processing_job_name)
        job.stop_requested()

    backend.stop_processing_job = stop_processing_job
