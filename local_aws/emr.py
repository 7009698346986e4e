"""EMR clusters whose steps really run: spark-submit in local mode, s3:// arguments staged in and out.

Cluster: STARTING (the release's node environment is built: a venv from the release's `python3`,
see emr_releases.py, with that release's Spark) → BOOTSTRAPPING (bootstrap actions run in it) →
RUNNING while a step runs → WAITING → TERMINATING → TERMINATED, or TERMINATED_WITH_ERRORS.
Status.StateChangeReason carries AWS's Code (ClusterStateChangeReason: ALL_STEPS_COMPLETED,
USER_REQUEST, STEP_FAILURE, BOOTSTRAP_FAILURE, VALIDATION_ERROR, INTERNAL_ERROR) and Message —
https://docs.aws.amazon.com/emr/latest/APIReference/API_ClusterStateChangeReason.html.
Step: PENDING → RUNNING → COMPLETED | FAILED (FailureDetails: Reason, Message, LogFile —
https://docs.aws.amazon.com/emr/latest/APIReference/API_FailureDetails.html) | CANCELLED.
Step logs go to <LogUri>/<cluster id>/steps/<step id>/ as EMR writes them: controller.gz (the
command-runner's own lines), stdout.gz and stderr.gz (the process's) —
https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-manage-view-web-log-files.html.
As EMR on EC2 does, they are archived while the step runs, not only when it ends: each push rewrites the
three objects whole with everything so far (AWS: about every five minutes; here every
`ORCHARD_EMR_STEP_LOG_PUSH_S` seconds, 5 by default, so tests and the demo see it), and once more at the end.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow
from moto.emr import models as moto_emr

from local_aws import emr_releases, jobs, s3io
from local_aws.environments import ensure_env, python_of_minor
from local_aws.process import run_process

log = logging.getLogger(__name__)

NODE_PIP = Path(__file__).with_name("emr_node_pip.py")
# Seconds between pushes of a running step's logs to its LogUri (AWS: about 300); 0: only at the end.
STEP_LOG_PUSH_S = float(os.environ.get("ORCHARD_EMR_STEP_LOG_PUSH_S", "5"))
LOCAL_MASTER = "local[2]"
# spark-submit options whose next argument is a value (so it is not mistaken for the application).
SPARK_VALUE_OPTIONS = {
    "--master",
    "--deploy-mode",
    "--conf",
    "--name",
    "--py-files",
    "--files",
    "--jars",
    "--packages",
    "--driver-memory",
    "--executor-memory",
    "--executor-cores",
    "--num-executors",
    "--class",
    "--archives",
    "--properties-file",
    "--driver-cores",
    "--total-executor-cores",
    "--queue",
}


class BootstrapFailure(RuntimeError):
    """A bootstrap action ended non-zero: the cluster ends TERMINATED_WITH_ERRORS, BOOTSTRAP_FAILURE."""


class ClusterStopped(RuntimeError):
    """TerminateJobFlows arrived while the cluster was still starting or bootstrapping."""


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
        self.state_change_code: str | None = None
        self.node_python = ""
        self._wake = threading.Event()
        self._stop = jobs.new_stop_signal()
        self._started = False
        super().__init__(*args, **kwargs)
        self._started = True
        threading.Thread(target=self._lifecycle, daemon=True, name=f"emr-{self.id}").start()

    @property
    def status(self) -> dict[str, Any]:
        status = super().status
        reason: dict[str, str] = {}
        if self.state_change_code:
            reason["Code"] = self.state_change_code
        if getattr(self, "last_state_change_reason", None):
            reason["Message"] = self.last_state_change_reason
        status["StateChangeReason"] = reason
        return status

    @property
    def master_instance_id(self) -> str:
        """The id EMR's messages name the master by ("On the master instance (i-...), ...")."""
        return "i-" + hashlib.sha256(self.id.encode()).hexdigest()[:17]

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
        self.state_change_code = "USER_REQUEST"
        self.last_state_change_reason = "Terminated by user request"
        self._stop.set()
        self._wake.set()

    def _lifecycle(self) -> None:
        try:
            release = emr_releases.lookup(self.release_label)
            bin_dir = self._provision(release)
            self.state = "WAITING"
            self.ready_datetime = utcnow()
            self._run_steps(bin_dir)
        except emr_releases.UnsupportedRelease as error:
            self._fail("VALIDATION_ERROR", str(error))
        except BootstrapFailure as error:
            self._fail("BOOTSTRAP_FAILURE", str(error))
        except ClusterStopped:
            self._cancel_pending()
            self._end("TERMINATED", "USER_REQUEST", "Terminated by user request")
        except Exception as error:
            log.exception("EMR cluster %s failed in the sandbox", self.id)
            self._fail("INTERNAL_ERROR", f"An internal error occurred. (sandbox: {error})")
        finally:
            jobs.release(self._stop)

    def _fail(self, code: str, message: str) -> None:
        self._cancel_pending()
        self._end("TERMINATED_WITH_ERRORS", code, message)

    def _provision(self, release: emr_releases.Release) -> Path:
        """The nodes' environment: a venv from the release's python3 with its Spark, then the bootstraps."""
        interpreter = python_of_minor(release.python)
        self.node_python = (
            f"Python {interpreter.version} ({interpreter.path})"
            if interpreter
            else f"host Python {sys.version.split()[0]} (no python{release.python} here; "
            f"bootstrap pip installs resolved for {release.python})"
        )
        if interpreter:
            log.info(
                "EMR cluster %s (%s): node python3 = %s (Python %s, as on %s)",
                self.id,
                release.label,
                interpreter.path,
                interpreter.version,
                release.os,
            )
        else:
            log.warning(
                "EMR cluster %s (%s): no python%s on this machine; the node venv uses the host "
                "Python %s and bootstrap pip installs are resolved for Python %s (wheels only)",
                self.id,
                release.label,
                release.python,
                sys.version.split()[0],
                release.python,
            )
        scripts = [(action, s3io.read(action.script_path)) for action in self.bootstrap_actions]
        digest = hashlib.sha256(b"".join(text for _, text in scripts)).hexdigest()[:12]

        def bootstrap(bin_dir: Path) -> None:
            self.state = "BOOTSTRAPPING"
            for number, (action, text) in enumerate(scripts, start=1):
                self._run_bootstrap(bin_dir, number, action, text, release, resolve=not interpreter)

        return ensure_env(
            f"{release.pyspark}\n# bootstrap {digest}\n",
            label=release.label,
            log=log.info,
            setup=bootstrap,
            python=interpreter,
        )

    def _node_env(self, bin_dir: Path) -> dict[str, str]:
        """What a process on a cluster node sees: the cluster's Python first on PATH, AWS = the sandbox."""
        role = jobs.profile_role(self.emr_backend.account_id, self.role)  # the EC2 instance profile's role
        return {
            **jobs.aws_env(self.emr_backend.region_name, role, "ec2.amazonaws.com"),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def _run_bootstrap(
        self,
        bin_dir: Path,
        number: int,
        action: moto_emr.BootstrapAction,
        script: bytes,
        release: emr_releases.Release,
        resolve: bool,
    ) -> None:
        workdir = jobs.workspace("emr-bootstrap", f"{self.id}-{number}")
        (workdir / "bootstrap.sh").write_bytes(script)
        node_bin = _node_commands(workdir / "node-bin", bin_dir, release.python if resolve else None)
        env = self._node_env(bin_dir)
        env["PATH"] = f"{node_bin}{os.pathsep}{env['PATH']}"
        outcome = run_process(
            ["bash", str(workdir / "bootstrap.sh"), *action.args],
            cwd=workdir,
            env=env,
            log=lambda line: log.info("[bootstrap %s] %s", action.name, line.rstrip()),
            stop=self._stop,
        )
        jobs.discard(workdir)
        if outcome.stopped:
            raise ClusterStopped()
        if outcome.exit_code != 0:
            # AWS's wording: "On the master instance (i-...), bootstrap action 1 returned a non-zero
            # return code" (seen in DescribeCluster / the console; e.g. github.com/Wittline/
            # pyspark-on-aws-emr/issues/4).
            raise BootstrapFailure(
                f"On the master instance ({self.master_instance_id}), bootstrap action "
                f"{number} returned a non-zero return code"
            )

    def _run_steps(self, bin_dir: Path) -> None:
        while not self._stop.is_set():
            step = next((s for s in self.steps if s.state == "PENDING"), None)
            if step is None:
                if not self.keep_job_flow_alive_when_no_steps:
                    return self._end("TERMINATED", "ALL_STEPS_COMPLETED", "Steps completed")
                self.state = "WAITING"
                self._wake.wait(timeout=1)
                self._wake.clear()
                continue
            self.state = "RUNNING"
            if not self._run_step(step, bin_dir) and step.action_on_failure in (
                "TERMINATE_CLUSTER",
                "TERMINATE_JOB_FLOW",
            ):
                self._cancel_pending()
                return self._end("TERMINATED_WITH_ERRORS", "STEP_FAILURE", "Shut down as step failed")
            if step.state == "FAILED" and step.action_on_failure == "CANCEL_AND_WAIT":
                self._cancel_pending()
        self._cancel_pending()
        self._end("TERMINATED", "USER_REQUEST", "Terminated by user request")

    def _run_step(self, step: moto_emr.Step, bin_dir: Path) -> bool:
        step.state = "RUNNING"
        step.start()
        workdir = jobs.workspace("emr-step", step.id)
        controller = StepController(step)
        stdout: list[str] = []
        stderr_file = workdir / ".step-stderr"
        outcome = None
        started = time.monotonic()
        pusher = StepLogPusher(
            lambda: self._upload_step_logs(
                step, list(controller.lines), list(stdout), _read_lines(stderr_file)
            ),
            STEP_LOG_PUSH_S if self.log_uri else 0,
        )
        try:
            staged = stage_arguments(step.args, workdir)
            argv = spark_submit_argv(staged.args, bin_dir, node_spark_defaults(self.configurations))
            controller.start(argv, bin_dir, self.node_python)
            pusher.start()
            env = {
                **self._node_env(bin_dir),
                "PYSPARK_PYTHON": str(bin_dir / "python"),
                "SPARK_LOCAL_IP": "127.0.0.1",
            }
            # stdout and stderr apart, as EMR keeps them (run_process merges what it reads).
            split = ["bash", "-c", 'exec "$@" 2>"$0"', str(stderr_file), *argv]
            outcome = run_process(split, cwd=workdir, env=env, log=stdout.append, stop=self._stop)
            if outcome.exit_code == 0:
                staged.sync_back()
        except Exception as error:
            controller.line("ERROR", f"sandbox: {error}")
            outcome = None
        finally:
            pusher.stop()  # before the last push below: no periodic one may overwrite it
        stderr = _read_lines(stderr_file)
        ok = outcome is not None and outcome.exit_code == 0
        seconds = int(time.monotonic() - started)
        if outcome is not None:
            controller.finish(outcome.exit_code, seconds)
        log_folder = self._upload_step_logs(step, controller.lines, stdout, stderr)
        step.end_date_time = utcnow()
        if ok:
            step.state = "COMPLETED"
        elif outcome is not None and outcome.stopped:
            step.state = "CANCELLED"
        else:
            step.state = "FAILED"
            # FailureDetails: "Reason: The reason for the step failure. In the case where the service
            # cannot successfully determine the root cause of the failure, it returns 'Unknown Error'
            # as a reason. LogFile: The path to the log file where the step failure root cause was
            # originally recorded." — API_FailureDetails.html. EMR points at the step's stderr.gz.
            step.failure_details = {
                "Reason": "Unknown Error.",
                "Message": _last_error(stderr + stdout + controller.lines),
                "LogFile": f"{log_folder}/stderr.gz" if log_folder else "",
            }
        jobs.discard(workdir)
        return ok

    def _upload_step_logs(
        self, step: moto_emr.Step, controller: list[str], stdout: list[str], stderr: list[str]
    ) -> str | None:
        """<LogUri>/<cluster id>/steps/<step id>/{controller,stdout,stderr}.gz; returns the folder URI."""
        if not self.log_uri:
            return None
        prefix = f"{self.log_uri.rstrip('/')}/{self.id}/steps/{step.id}"
        s3 = s3io.client()
        bucket, key = s3io.split_uri(prefix)
        for name, lines in (("controller", controller), ("stdout", stdout), ("stderr", stderr)):
            s3.put_object(Bucket=bucket, Key=f"{key}/{name}.gz", Body=gzip.compress("".join(lines).encode()))
        return prefix

    def _cancel_pending(self) -> None:
        for step in self.steps:
            if step.state == "PENDING":
                step.state = "CANCELLED"

    def _end(self, state: str, code: str, reason: str) -> None:
        self.state_change_code = code
        self.last_state_change_reason = reason
        self.end_datetime = utcnow()
        self.state = state


class StepLogPusher:
    """Calls `push` every `interval_s` seconds from start() to stop(), as EMR's log pusher archives a running
    step's logs; a failed push is logged and the next one tries again (the step goes on)."""

    def __init__(self, push: Callable[[], object], interval_s: float):
        self.push, self.interval_s = push, interval_s
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="emr-step-log-push", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.push()
            except Exception as error:  # S3 briefly unavailable: the step's own outcome is what counts
                log.warning(
                    "pushing a running step's logs failed (%s); next push in %ss", error, self.interval_s
                )


class StepController:
    """The command-runner's own lines (controller.gz), in the form EMR's step controller writes them."""

    def __init__(self, step: moto_emr.Step):
        self.step = step
        self.lines: list[str] = []

    def line(self, level: str, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.lines.append(f"{stamp} {level} {text}\n")

    def start(self, argv: list[str], bin_dir: Path, node_python: str) -> None:
        command = " ".join(
            ["hadoop", "jar", "/var/lib/aws/emr/step-runner/hadoop-jars/command-runner.jar", *self.step.args]
        )
        self.line("INFO", f"startExec '{command}'")
        self.line("INFO", f"redirectOutput to /mnt/var/log/hadoop/steps/{self.step.id}/stdout")
        self.line("INFO", f"redirectError to /mnt/var/log/hadoop/steps/{self.step.id}/stderr")
        self.line("INFO", f"sandbox: node python3 = {node_python}")
        self.line("INFO", f"sandbox: runs {' '.join(argv)} with PYSPARK_PYTHON={bin_dir / 'python'}")

    def finish(self, exit_code: int, seconds: int) -> None:
        self.line("INFO", f"waitProcessCompletion ended with exit code {exit_code}")
        self.line("INFO", f"total process run time: {seconds} seconds")
        if exit_code == 0:
            self.line("INFO", f"Step succeeded with exitCode 0 and took {seconds} seconds")
        else:
            self.line("WARN", f"Step failed with exitCode {exit_code} and took {seconds} seconds")


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return path.read_text(errors="replace").splitlines(keepends=True)


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


# What EMR itself writes to the nodes' spark-defaults.conf before a cluster's `spark-defaults` classification
# (whose properties replace these by name): every driver and executor JVM starts with these options, and
# their collector is why a GC flag in spark.driver/executor.extraJavaOptions stops the JVM at launch
# ("Multiple garbage collectors selected"); a job that wants another collector replaces defaultJavaOptions.
# EMR Release Guide, "Configure Spark", "Configuring Spark garbage collection on Amazon EMR 6.1.0"
# (https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-spark-configure.html#spark-gc-config): "Setting
# custom garbage collection configurations with spark.driver.extraJavaOptions and
# spark.executor.extraJavaOptions results in driver or executor launch failure ... the default garbage
# collection configuration is set through spark.driver.defaultJavaOptions and
# spark.executor.defaultJavaOptions". The page scopes this to 6.1.0, but the published spark-defaults.conf
# of later images (an emr-6.8.0 job's, EMR Spark 3.5.5 examples on GitHub) still carry the collector below,
# so the sandbox applies it to every release (stricter where the two disagree); not checked on a 7.x cluster.
EMR_SPARK_DEFAULTS = {
    "spark.driver.defaultJavaOptions": (
        "-XX:OnOutOfMemoryError='kill -9 %p' -XX:+UseParallelGC -XX:InitiatingHeapOccupancyPercent=70"
    ),
    "spark.executor.defaultJavaOptions": (
        "-verbose:gc -XX:+PrintGCDetails -XX:+PrintGCDateStamps -XX:+UseParallelGC "
        "-XX:InitiatingHeapOccupancyPercent=70 -XX:OnOutOfMemoryError='kill -9 %p'"
    ),
}


def node_spark_defaults(configurations: list[Any]) -> dict[str, str]:
    """The nodes' spark-defaults.conf: EMR's own properties, then the cluster's classification over them."""
    return {**EMR_SPARK_DEFAULTS, **spark_defaults(configurations)}


def spark_defaults(configurations: list[Any]) -> dict[str, str]:
    """The `spark-defaults` classification of the cluster's Configurations: EMR writes these properties to
    the nodes' spark-defaults.conf ("Configure Spark",
    https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-spark-configure.html), which spark-submit reads."""
    properties: dict[str, str] = {}
    for item in configurations or []:
        # moto keeps the request's dicts key-transformed (spark.driver.extra_java_options): take the originals
        item = item.original_dict() if hasattr(item, "original_dict") else dict(item)
        if item.get("Classification") == "spark-defaults":
            properties.update({str(k): str(v) for k, v in (item.get("Properties") or {}).items()})
    return properties


def spark_submit_argv(args: list[str], bin_dir: Path, defaults: dict[str, str] | None = None) -> list[str]:
    """EMR's `command-runner.jar spark-submit ...` in local mode: YARN and cluster deploy mode dropped; the
    cluster's spark-defaults come first as --conf (the step's own --conf, later, wins as over the file)."""
    if not args or args[0] != "spark-submit":
        raise ValueError(f"the sandbox runs command-runner.jar spark-submit steps; got {args[:1]}")
    argv, rest = [str(bin_dir / "spark-submit"), "--master", LOCAL_MASTER], args[1:]
    for key, value in (defaults or {}).items():
        argv += ["--conf", f"{key}={value}"]
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
    lines = [
        line.strip() for line in output if line.strip() and " INFO " not in line and " WARN " not in line
    ]
    errors = [
        line
        for line in lines
        if any(m in line for m in ("Error", "Exception", "No such file", "does not exist"))
    ]
    return (errors or lines or ["no output"])[-1][:1024]


def _node_commands(folder: Path, bin_dir: Path, resolve_for: str | None) -> Path:
    """Commands a bootstrap script finds first on PATH: `sudo` (EMR bootstraps run `sudo pip install`;
    here it just runs the command) and, when the venv is not the release's Python (`resolve_for` set),
    `python3`/`pip`/`pip3` that resolve every `pip install` for that Python first (emr_node_pip.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {"sudo": '#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n'}
    if resolve_for:
        python, helper = bin_dir / "python", NODE_PIP
        pip = f'exec "{python}" "{helper}" {resolve_for} "{python}" "$@"'
        scripts["python3"] = (
            f'#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; {pip}; fi\n'
            f'exec "{python}" "$@"\n'
        )
        scripts["pip"] = scripts["pip3"] = f"#!/bin/sh\n{pip}\n"
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def _known_cluster(method_name: str):
    """The backend method, answering an unknown cluster id as EMR does: InvalidRequestException "Cluster id
    '<id>' is not valid." (DescribeCluster's answer,
    https://docs.aws.amazon.com/emr/latest/APIReference/API_DescribeCluster.html#API_DescribeCluster_Errors;
    EMR gives every call on a cluster id it does not know the same answer). moto raised KeyError there: an
    HTTP 500 that botocore and the provider's waiters retry without end, so a wait on a cluster lost with
    a sandbox restart never failed (issue 14.3)."""
    original = getattr(moto_emr.ElasticMapReduceBackend, method_name)

    def checked(self, *args: Any, **kwargs: Any):
        first = args[0] if args else None
        ids = kwargs.get("cluster_id", kwargs.get("job_flow_id", kwargs.get("job_flow_ids", first)))
        for cluster_id in ids if isinstance(ids, list) else [ids]:
            if isinstance(cluster_id, str) and cluster_id not in self.clusters:
                raise moto_emr.InvalidCluster(cluster_id)
        return original(self, *args, **kwargs)

    checked.__wrapped__ = original  # type: ignore[attr-defined]
    return checked


# ElasticMapReduceBackend methods whose first argument names clusters (an id, or a list: TerminateJobFlows).
CLUSTER_METHODS = (
    "describe_step",
    "list_steps",
    "add_job_flow_steps",
    "terminate_job_flows",
    "list_bootstrap_actions",
    "list_instance_groups",
    "list_instances",
    "modify_cluster",
    "set_termination_protection",
)


def install() -> None:
    moto_emr.Cluster = (
        SandboxCluster  # ElasticMapReduceBackend.run_job_flow builds clusters through this name
    )
    for name in CLUSTER_METHODS:
        method = getattr(moto_emr.ElasticMapReduceBackend, name, None)
        if method is not None and not hasattr(method, "__wrapped__"):
            setattr(moto_emr.ElasticMapReduceBackend, name, _known_cluster(name))
