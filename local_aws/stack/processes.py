"""The stack's processes: the sandbox and Airflow's components as child processes of this one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import local_aws
from local_aws import DEFAULT_PORT
from local_aws.stack.api import RestApi
from local_aws.stack.environment import (
    DEFAULT_API_PORT,
    REPO_ROOT,
    _shown,
    admin_password,
    airflow_env,
    airflow_home,
    dags_folder,
)
from local_aws.stack.errors import Interrupted, StackError

AIRFLOW_COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
# What `make demo EXECUTOR=celery` needs in .venv (not requirements.txt: the official image ships it);
# celery 5.7 lacks `celery.backends.database.retry`, which provider 3.26.0 imports.
CELERY_PINS = "apache-airflow-providers-celery==3.26.0 celery==5.5.3 kombu==5.5.4 redis==8.2.0"
ATTACH_ENV = "SANDBOX_ATTACH"  # 1: make demo / make up use the sandbox already running on SANDBOX_PORT
SANDBOX_LISTENING = "local AWS sandbox on http://"  # what `python -m local_aws serve` prints once bound


# `airflow triggerer`, its supervisor's in-process Task Execution API built before any trigger runs. Airflow
# 3.3's triggerer builds that API on the first request a trigger makes through its supervisor (an XCom push,
# a run's state), in the loop that also starts triggers and hands their events over: 3.3 s on a quiet machine
# (benchmarks/triggerer_api_cold_start.py), 4-10 s in a demo, where it held back the first job tasks'
# triggers (docs/architecture.md, "A warm triggerer"). Run as `python -c` so the triggerer's sys.path stays a
# deployment's (deployed_layout_env: no local_aws); docker-compose and MWAA triggerers pay it once, at their
# first such request.
WARM_TRIGGERER = """
import sys
from airflow.jobs import triggerer_job_runner as runner
from airflow.sdk.execution_time.comms import GetDagRunState
from airflow.sdk.execution_time.request_handlers import handle_get_dag_run_state

start = runner.TriggerRunnerSupervisor.start.__func__


def start_warm(cls, *args, **kwargs):
    supervisor = start(cls, *args, **kwargs)
    try:  # any request builds the API; an unknown run's state is the cheapest
        handle_get_dag_run_state(supervisor.client, GetDagRunState(dag_id="-", run_id="-"))
    except Exception:
        pass
    return supervisor


runner.TriggerRunnerSupervisor.start = classmethod(start_warm)
from airflow.__main__ import main

sys.argv = ["airflow", "triggerer"]
sys.exit(main())
"""


def airflow_command(component: str) -> list[str]:
    if component == "triggerer":
        return [sys.executable, "-c", WARM_TRIGGERER]
    return [sys.executable, "-m", "airflow", component]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the stack's process dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stack(RestApi):
    """The sandbox and Airflow, as child processes of this one. Use as a context manager."""

    def __init__(
        self,
        *,
        home: Path | None = None,
        dags: Path | None = None,
        sandbox_port: int = DEFAULT_PORT,
        api_port: int = DEFAULT_API_PORT,
        api_host: str = "127.0.0.1",
        fresh_db: bool = False,
        db_name: str = "airflow.db",
        schedules: bool = False,
        attach_sandbox: bool = False,
        celery_workers: int = 0,
        say=print,
    ):
        self.home = home or airflow_home()
        self.dags = dags or dags_folder()
        self.sandbox_port = sandbox_port
        self.api_port = api_port
        self.api_host = api_host
        self.fresh_db = fresh_db
        self.schedules = schedules
        # SANDBOX_ATTACH=1: use the sandbox answering on `sandbox_port` (not started, not stopped here)
        self.attach_sandbox = attach_sandbox
        # > 0: CeleryExecutor with that many workers and a Redis broker (redis-server) the stack starts
        self.celery_workers = celery_workers
        self.redis_port: int | None = None
        self.db_path = self.home / db_name
        self.log_dir = self.home / "logs" / "stack"
        self.say = say
        self.children: list[Child] = []
        self._token: str | None = None

    # -- URLs and environment
    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.api_port}"

    def env(self) -> dict[str, str]:
        return airflow_env(
            self.home,
            self.dags,
            db_path=self.db_path,
            api_port=self.api_port,
            api_host=self.api_host,
            sandbox_url=self.sandbox_url,
            schedules=self.schedules,
            celery_broker_url=f"redis://127.0.0.1:{self.redis_port}/0" if self.redis_port else None,
            celery_workers=self.celery_workers,
        )

    # -- lifecycle
    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, startup_timeout_s: float = 300) -> Stack:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.start_sandbox()
        if self.celery_workers:
            self.start_redis()
        self.init_airflow()
        self.start_airflow(startup_timeout_s)
        if self.celery_workers:
            self.start_celery_workers()
        return self

    def start_redis(self, timeout_s: float = 30) -> None:
        """redis-server (Debian's `redis-server`) on a free port, in memory only: the Celery broker."""
        import importlib.util
        import shutil

        from local_aws.stack.ports import pick_port

        binary = shutil.which("redis-server")
        if not binary:
            raise StackError("EXECUTOR=celery needs redis-server: apt-get install redis-server")
        if importlib.util.find_spec("airflow.providers.celery") is None:
            raise StackError(
                "EXECUTOR=celery needs the Celery provider in .venv: pip install "
                f"{CELERY_PINS} (docs/sandbox.md, section 11)"
            )
        self.redis_port = pick_port(0)
        argv = [
            binary,
            "--port",
            str(self.redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        child = self._spawn("redis", argv, dict(os.environ), cwd=self.home)
        deadline = time.monotonic() + timeout_s
        while "Ready to accept connections" not in child.log_tail(50):
            self._check_alive(child)
            if time.monotonic() > deadline:
                raise StackError(
                    f"redis-server did not start in {timeout_s:.0f} s ({_shown(child.log_path)})"
                )
            time.sleep(0.2)
        self.say(f"stack: redis (Celery broker) on 127.0.0.1:{self.redis_port}")

    def start_celery_workers(self) -> None:
        """`airflow celery worker` × celery_workers, each with its own Celery hostname and pid file; logs
        are read from the shared logs folder, so no worker serves them (two would share port 8793)."""
        env = self.env()
        for n in range(1, self.celery_workers + 1):
            argv = [
                sys.executable,
                "-m",
                "airflow",
                "celery",
                "worker",
                "--celery-hostname",
                f"worker{n}@%h",
                "--pid",
                str(self.home / f"celery-worker{n}.pid"),
                "--skip-serve-logs",
            ]
            self._spawn(f"celery-worker{n}", argv, env, cwd=self.home)
        self.say(
            f"stack: {self.celery_workers} Celery workers (logs in {_shown(self.log_dir)}/celery-worker*.log)"
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "w")  # noqa: SIM115 - the child owns it
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this process only; it stops the children in order
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            log_file.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def _check_alive(self, child: Child) -> None:
        if not child.alive():
            raise StackError(
                f"{child.name} exited with status {child.process.returncode}; "
                f"its log ({_shown(child.log_path)}) ends with:\n{child.log_tail()}"
            )

    def start_sandbox(self, timeout_s: float = 60) -> None:
        from local_aws.server import is_up

        if self.attach_sandbox:
            if not is_up(self.sandbox_url):
                raise StackError(
                    f"{ATTACH_ENV}=1 but no sandbox answers on {self.sandbox_url}: start one "
                    f"(make sandbox SANDBOX_PORT={self.sandbox_port}) or unset {ATTACH_ENV}"
                )
            self.say(
                f"stack: attached to the sandbox on {self.sandbox_url} ({ATTACH_ENV}=1: not started, "
                "not stopped by this stack)"
            )
            return
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        child = self._spawn(
            "sandbox",
            [sys.executable, "-m", "local_aws", "serve", "--port", str(self.sandbox_port)],
            env,
        )
        deadline = time.monotonic() + timeout_s
        # Ours is up once it says it listens (`serve` prints that after binding) and the port answers: a
        # server of someone else's that took the port meanwhile makes ours exit, never passes for it.
        while not (SANDBOX_LISTENING in child.log_tail(5) and is_up(self.sandbox_url)):
            self._check_alive(child)
            if time.monotonic() > deadline:
                raise StackError(f"the sandbox did not answer on {self.sandbox_url} in {timeout_s:.0f} s")
            time.sleep(0.2)
        self._check_alive(child)
        self.say(f"stack: sandbox up on {self.sandbox_url} (log: {_shown(child.log_path)})")

    def init_airflow(self) -> None:
        if self.fresh_db:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        admin_password(self.home)
        log_path = self.log_dir / "db-migrate.log"
        with open(log_path, "w") as log_file:
            proc = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                cwd=self.home,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        if proc.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise StackError(f"`airflow db migrate` failed ({_shown(log_path)}):\n{tail}")

    def start_airflow(self, timeout_s: float = 300) -> None:
        env = self.env()
        for component in AIRFLOW_COMPONENTS:
            # cwd: Airflow's home, not the repository (a relative path to include/ must not resolve)
            self._spawn(component, airflow_command(component), env, cwd=self.home)
        deadline = time.monotonic() + timeout_s
        health: dict = {}
        while True:
            for child in self.children:
                self._check_alive(child)
            with contextlib.suppress(OSError, ValueError):
                health = self._get_json("/api/v2/monitor/health", auth=False)
                statuses = [
                    health.get(k, {}).get("status")
                    for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                ]
                if all(s == "healthy" for s in statuses):
                    break
            if time.monotonic() > deadline:
                raise StackError(
                    f"Airflow was not healthy after {timeout_s:.0f} s: "
                    f"{health or 'api-server not answering'}; "
                    f"logs in {_shown(self.log_dir)}/"
                )
            time.sleep(1)
        self.warm_execution_api()
        self.say(
            f"stack: Airflow up on {self.ui_url} (scheduler, dag-processor, triggerer, api-server; "
            f"logs in {_shown(self.log_dir)}/)"
        )

    def warm_execution_api(self) -> None:
        """Make the api-server's first Task Execution API request now, not a task's: that first request pays
        the execution API's cold start (4 s idle; 18 s on the loaded 2 cores, in which the api-server
        answered nothing else), and it was the `run` call of the first task of every run `make demo` starts
        together (benchmarks/airflow_overhead.py's critical path: that task's start -> code)."""
        self._request("GET", "/execution/health", auth=False, timeout=300)

    def dead_children(self) -> list[Child]:
        return [c for c in self.children if not c.alive()]

    def stop(self, grace_s: float = 10) -> None:
        """Stop every process started, in three steps, each given `grace_s` to exit before SIGKILL:
        the scheduler (with the tasks it runs), triggerer and dag-processor; then the api-server (tasks
        report to it until they end); then the sandbox (tasks and triggers talk to it)."""
        if not self.children:
            return
        steps = (
            [
                c
                for c in self.children
                if c.name in ("scheduler", "triggerer", "dag-processor") or c.name.startswith("celery-worker")
            ],
            [c for c in self.children if c.name == "api-server"],
            [c for c in self.children if c.name in ("sandbox", "redis")],
        )
        try:
            self._stop_steps(steps, grace_s)
        except (KeyboardInterrupt, Interrupted):  # asked again: no more waiting
            for child in self.children:
                _signal_group(child.process, signal.SIGKILL)
        self.children.clear()
        self.say("stack: stopped")

    @staticmethod
    def _stop_steps(steps: Sequence[list[Child]], grace_s: float) -> None:
        for group in steps:
            for child in group:
                _signal_group(child.process, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in group:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=max(0.05, deadline - time.monotonic()))
            for child in group:
                # the whole process group: LocalExecutor workers and their tasks, jobs the sandbox runs
                _signal_group(child.process, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=5)

    # -- the sandbox, seen from here
    def s3_client(self):
        return local_aws.sandbox_client("s3", self.sandbox_url)

    def seed(
        self, dag_ids: Iterable[str], failures: dict[str, str] | None = None, skip_upload: Iterable[str] = ()
    ) -> dict[str, dict]:
        """Create the roles and buckets the settings name and upload each DAG's demo data; the confs to run
        them with (`local_aws.stack.seed.seed`)."""
        from local_aws.stack.seed import seed

        return seed(self, dag_ids, failures, skip_upload)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _signals_as_interrupts():
    """SIGINT, SIGTERM and SIGHUP unwind the stack, so `finally` stops the children.

    SIGINT is handled explicitly, not left to Python's KeyboardInterrupt: a process started in the
    background by a non-interactive shell (a CI runner's `cmd &`) inherits SIGINT *ignored*, and Python then
    installs no handler, so Ctrl-C (or the test's SIGINT) would be lost and the stack left running."""

    def handler(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
