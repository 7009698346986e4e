"""EMR clusters whose steps really run: spark-submit in local mode, s3:// arguments staged in and out.

Cluster: STARTING (the release's Spark environment is built) → BOOTSTRAPPING (bootstrap actions run
in that environment) → RUNNING while a step runs → WAITING → TERMINATING → TERMINATED, or
TERMINATED_WITH_ERRORS. Step: PENDING → RUNNING → COMPLETED | FAILED (FailureDetails with the log
file) | CANCELLED. Step stdout/stderr go to <LogUri>/<cluster id>/steps/<step id>/ as EMR writes them.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow
from moto.emr import models as moto_emr

from local_aws import jobs, s3io
from local_aws.environments import ensure_env
from local_aws.process import run_process

log = logging.getLogger(__name__)

# The Spark each EMR release line ships (EMR 7.x: Spark 3.5).
SPARK_BY_RELEASE = {"emr-7": "pyspark==3.5.9"}
LOCAL_MASTER = "local[2]"
# spark-submit options whose next argument is a value (so it is not mistaken for the application).
SPARK_VALUE_OPTIONS = {
    "--master", "--deploy-mode", "--conf", "--name", "--py-files", "--files", "--jars", "--packages",
    "--driver-memory", "--executor-memory", "--executor-cores", "--num-executors", "--class",
    "--archives", "--properties-file", "--driver-cores", "--total-executor-cores", "--queue",
}


class SandboxStep(moto_emr.Step):
    @property
    def status(self) -> dict[str, Any]:
        status = super().status
        failure = getattr(self, "failure_details", None)
        if failure:
            status["FailureDetails"] = failure
        return status


class SandboxCluster(moto_emr.Cluster):
    """moto's cluster, with its instant lifecycle replaced by a thread that runs the steps."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._wake = threading.Event()
        self._stop = jobs.new_stop_signal()
        self._started = False
        super().__init__(*args, **kwargs)
        self._started = True
        threading.Thread(target=self._lifecycle, daemon=True, name=f"emr-{self.id}").start()

    # moto calls these from __init__ to jump to WAITING / TERMINATED at once: the thread does it instead.
    def start_cluster(self) -> None:
        self.state = "STARTING"
        self.start_datetime = utcnow()

    def run_bootstrap_actions(self) -> None:
        pass

    def add_steps(self, steps: list[dict[str, Any]]) -> list[moto_emr.Step]:
        added = [SandboxStep(state="PENDING", **step) for step in steps]
        self.steps.extend(added)
        if self._started:
            self._wake.set()
        return added

    def terminate(self) -> None:
        if self.state in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
            return
        self.state = "TERMINATING"
        self.last_state_change_reason = "Terminated by user request"
        self._stop.set()
        self._wake.set()

    def _lifecycle(self) -> None:
        try:
            bin_dir = self._provision()
            self.state = "WAITING"
            self.ready_datetime = utcnow()
            self._run_steps(bin_dir)
        except Exception as error:
            log.exception("EMR cluster %s failed in the sandbox", self.id)
            self._end("TERMINATED_WITH_ERRORS", f"Bootstrap failure or unsupported configuration: {error}")
        finally:
            jobs.release(self._stop)

    def _provision(self) -> Path:
        spark = SPARK_BY_RELEASE.get((self.release_label or "").rsplit(".", 1)[0].split(".")[0])
        if spark is None:
            raise ValueError(
                f"release {self.release_label!r} is not supported by the sandbox "
                f"(supported: {', '.join(f'{r}.x' for r in SPARK_BY_RELEASE)})"
            )
        scripts = [(action, s3io.read(action.script_path)) for action in self.bootstrap_actions]
        digest = hashlib.sha256(b"".join(text for _, text in scripts)).hexdigest()[:12]

        def bootstrap(bin_dir: Path) -> None:
            self.state = "BOOTSTRAPPING"
            for action, text in scripts:
                self._run_bootstrap(bin_dir, action, text)

        return ensure_env(f"{spark}\n# bootstrap {digest}\n", label=self.release_label, log=log.info, setup=bootstrap)

    def _node_env(self, bin_dir: Path) -> dict[str, str]:
        """What a process on a cluster node sees: the cluster's Python first on PATH, AWS = the sandbox."""
        role = jobs.profile_role(self.emr_backend.account_id, self.role)  # the EC2 instance profile's role
        return {**jobs.aws_env(self.emr_backend.region_name, role, "ec2.amazonaws.com"),
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def _run_bootstrap(self, bin_dir: Path, action: moto_emr.BootstrapAction, script: bytes) -> None:
        workdir = jobs.workspace("emr-bootstrap", self.id)
        (workdir / "bootstrap.sh").write_bytes(script)
        _install_sudo_shim(bin_dir)
        outcome = run_process(["bash", str(workdir / "bootstrap.sh"), *action.args], cwd=workdir,
                              env=self._node_env(bin_dir),
                              log=lambda line: log.info("[bootstrap %s] %s", action.name, line.rstrip()), stop=self._stop)
        jobs.discard(workdir)
        if outcome.exit_code != 0:
            raise RuntimeError(f"bootstrap action {action.name!r} exited with {outcome.exit_code}")

    def _run_steps(self, bin_dir: Path) -> None:
        while not self._stop.is_set():
            step = next((s for s in self.steps if s.state == "PENDING"), None)
            if step is None:
                if not self.keep_job_flow_alive_when_no_steps:
                    return self._end("TERMINATED", "Steps completed")
                self.state = "WAITING"
                self._wake.wait(timeout=1)
                self._wake.clear()
                continue
            self.state = "RUNNING"
            if not self._run_step(step, bin_dir) and step.action_on_failure in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
                self._cancel_pending()
                return self._end("TERMINATED_WITH_ERRORS", f"Step {step.id} failed")
            if step.state == "FAILED" and step.action_on_failure == "CANCEL_AND_WAIT":
                self._cancel_pending()
        self._cancel_pending()
        self._end("TERMINATED", "Terminated by user request")

    def _run_step(self, step: moto_emr.Step, bin_dir: Path) -> bool:
        step.state = "RUNNING"
        step.start()
        workdir = jobs.workspace("emr-step", step.id)
        output: list[str] = []
        try:
            staged = stage_arguments(step.args, workdir)
            argv = spark_submit_argv(staged.args, bin_dir)
            env = {**self._node_env(bin_dir),
                   "PYSPARK_PYTHON": str(bin_dir / "python"), "SPARK_LOCAL_IP": "127.0.0.1"}
            outcome = run_process(argv, cwd=workdir, env=env, log=output.append, stop=self._stop)
            if outcome.exit_code == 0:
                staged.sync_back()
        except Exception as error:
            output.append(f"sandbox: {error}\n")
            outcome = None
        log_file = self._upload_step_log(step, output)
        ok = outcome is not None and outcome.exit_code == 0
        step.end_date_time = utcnow()
        if ok:
            step.state = "COMPLETED"
        elif outcome is not None and outcome.stopped:
            step.state = "CANCELLED"
        else:
            step.state = "FAILED"
            step.failure_details = {
                "Reason": "Unknown Error.",
                "Message": _last_error(output),
                "LogFile": log_file or "",
            }
        jobs.discard(workdir)
        return ok

    def _upload_step_log(self, step: moto_emr.Step, output: list[str]) -> str | None:
        if not self.log_uri:
            return None
        prefix = f"{self.log_uri.rstrip('/')}/{self.id}/steps/{step.id}"
        s3 = s3io.client()
        bucket, key = s3io.split_uri(prefix)
        s3.put_object(Bucket=bucket, Key=f"{key}/stderr.gz", Body=gzip.compress("".join(output).encode()))
        return f"{prefix}/stderr.gz"

    def _cancel_pending(self) -> None:
        for step in self.steps:
            if step.state == "PENDING":
                step.state = "CANCELLED"

    def _end(self, state: str, reason: str) -> None:
        self.last_state_change_reason = reason
        self.end_datetime = utcnow()
        self.state = state


@dataclass
class StagedArguments:
    """s3:// arguments replaced by local paths; folders are written back to S3 after a good run."""

    args: list[str]
    folders: dict[Path, tuple[str, dict[str, float]]] = field(default_factory=dict)

    def sync_back(self) -> None:
        for local, (uri, seen) in self.folders.items():
            for path in sorted(p for p in local.rglob("*") if p.is_file() and not _is_checksum(p)):
                if seen.get(str(path)) != path.stat().st_mtime:  # new or rewritten by the step
                    s3io.upload_file(path, f"{uri.rstrip('/')}/{path.relative_to(local).as_posix()}")


def _is_checksum(path: Path) -> bool:
    """Hadoop's local filesystem writes .<name>.crc beside each file; EMRFS on S3 does not."""
    return path.name.startswith(".") and path.name.endswith(".crc")


def stage_arguments(args: list[str], workdir: Path) -> StagedArguments:
    """An s3:// object becomes a local file; any other s3:// URI a local folder (input, output or both)."""
    staged = StagedArguments(args=[])
    s3 = s3io.client()
    for index, arg in enumerate(args):
        if not arg.startswith("s3://"):
            staged.args.append(arg)
            continue
        bucket, key = s3io.split_uri(arg)
        local = workdir / "s3" / f"{index}-{bucket}" / key.rstrip("/")
        if _is_object(s3, bucket, key):
            staged.args.append(str(s3io.download_file(arg, local)))
            continue
        s3io.download_prefix(arg.rstrip("/") + "/", local)
        staged.folders[local] = (arg, {str(p): p.stat().st_mtime for p in local.rglob("*") if p.is_file()})
        staged.args.append(str(local))
    return staged


def _is_object(s3: Any, bucket: str, key: str) -> bool:
    if not key or key.endswith("/"):
        return False
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError:
        return False


def spark_submit_argv(args: list[str], bin_dir: Path) -> list[str]:
    """EMR's `command-runner.jar spark-submit ...` in local mode: YARN and cluster deploy mode dropped."""
    if not args or args[0] != "spark-submit":
        raise ValueError(f"the sandbox runs command-runner.jar spark-submit steps; got {args[:1]}")
    argv, rest = [str(bin_dir / "spark-submit"), "--master", LOCAL_MASTER], args[1:]
    index = 0
    while index < len(rest):
        token = rest[index]
        if token in ("--master", "--deploy-mode"):
            index += 2
            continue
        if token in SPARK_VALUE_OPTIONS:
            argv += [token, rest[index + 1]]
            index += 2
            continue
        argv += rest[index:]
        break
    return argv


def _last_error(output: list[str]) -> str:
    """The line a person looks for in the step log: the last error, not Spark's INFO chatter."""
    lines = [line.strip() for line in output if line.strip() and " INFO " not in line and " WARN " not in line]
    errors = [line for line in lines if any(m in line for m in ("Error", "Exception", "No such file", "does not exist"))]
    return (errors or lines or ["no output"])[-1][:1024]


def _install_sudo_shim(bin_dir: Path) -> None:
    """Bootstrap scripts run `sudo pip install ...` on EMR nodes; here sudo just runs the command."""
    shim = bin_dir / "sudo"
    if not shim.exists():
        shim.write_text('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
        shim.chmod(0o755)


def install() -> None:
    moto_emr.Cluster = SandboxCluster  # ElasticMapReduceBackend.run_job_flow builds clusters through this name
