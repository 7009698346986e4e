"""The local stack: the sandbox and Airflow wired to it, as `make demo` and `make up` run them.

One `Stack` starts, as child processes of this one, the sandbox (`python -m local_aws serve`) and
Airflow's scheduler, dag-processor, triggerer and api-server on an SQLite database in `.airflow/`
(LocalExecutor, SimpleAuthManager). Every Airflow process gets the AWS connection and the `AWS_*`
variables that point boto3 / aiobotocore at the sandbox, so the DAGs run unchanged. `Stack.stop()`
stops all of them (also on Ctrl-C, SIGTERM or a failure); if this process is killed outright, Linux
sends each child SIGTERM (PR_SET_PDEATHSIG).

`run_demo()` triggers every DAG (or the ones asked for) with its demo data and reports; `run_up()`
leaves the stack running with the web UI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import local_aws
from local_aws import DEFAULT_PORT, DEFAULT_REGION

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGINS_FOLDER = REPO_ROOT / "plugins"

DAGS_FOLDER_ENV = "ORCHARD_DAGS_FOLDER"  # default: dags/ of the repository
AIRFLOW_HOME_ENV = "ORCHARD_AIRFLOW_HOME"  # default: .airflow/ of the repository
DEFAULT_API_PORT = 8080
DEFAULT_DEMO_TIMEOUT_S = 3600
ADMIN_USER = "admin"
AIRFLOW_COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
TERMINAL_STATES = {"success", "failed"}
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


class StackError(Exception):
    """A failure the user can act on; `exit_code` is what `python -m local_aws` exits with."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(BaseException):
    """SIGINT / SIGTERM / SIGHUP, turned into an exception so that everything started gets stopped."""


# --------------------------------------------------------------------------------------------- paths


def dags_folder() -> Path:
    return Path(os.environ.get(DAGS_FOLDER_ENV) or REPO_ROOT / "dags").resolve()


def airflow_home() -> Path:
    return Path(os.environ.get(AIRFLOW_HOME_ENV) or REPO_ROOT / ".airflow").resolve()


def _shown(path: Path) -> str:
    """A path as the user reads it: relative to the repository when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------- DAG discovery


@dataclass
class DagFolder:
    """What Airflow finds in a dags folder: DAG ids (→ file) and import errors (file → error)."""

    path: Path
    dags: dict[str, str] = field(default_factory=dict)
    import_errors: dict[str, str] = field(default_factory=dict)


def candidate_files(folder: Path) -> list[Path]:
    """Python files Airflow would parse in safe mode: those mentioning both "airflow" and "dag"."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        text = path.read_bytes().lower()
        if b"airflow" in text and b"dag" in text:
            found.append(path)
    return found


_LIST_DAGS = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder", safe_mode=True)
result = {"dags": {d: str(dag.fileloc) for d, dag in bag.dags.items()}, "import_errors": bag.import_errors}
print("ORCHARD_DAGS=" + json.dumps(result))
"""


def list_dags(folder: Path, env: dict[str, str] | None = None, timeout_s: float = 300) -> DagFolder:
    """The DAG ids in `folder`, as Airflow's own DagBag parses them (in a child process).

    A folder with no candidate file is answered without starting Python, so `make demo` with no DAGs
    yet returns at once.
    """
    result = DagFolder(folder)
    if not candidate_files(folder):
        return result
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_DAGS, str(folder)],
        env=env if env is not None else airflow_env(airflow_home(), folder),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("ORCHARD_DAGS="):
            parsed = json.loads(line.removeprefix("ORCHARD_DAGS="))
            result.dags = dict(sorted(parsed["dags"].items()))
            result.import_errors = parsed["import_errors"]
            return result
    raise StackError(f"could not list the DAGs in {folder}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


def select_dags(found: DagFolder, requested: Sequence[str] | None) -> list[str]:
    """The DAG ids to run: all of them, or those requested (each must exist)."""
    if not requested:
        return list(found.dags)
    unknown = [d for d in requested if d not in found.dags]
    if unknown:
        known = ", ".join(found.dags) if found.dags else f"none (no DAGs in {_shown(found.path)}/ yet)"
        errors = ""
        if found.import_errors:
            errors = f"\n(and {len(found.import_errors)} file(s) failed to import: {', '.join(found.import_errors)})"
        raise StackError(f"demo: unknown DAG id(s): {', '.join(unknown)}\nknown DAG ids: {known}{errors}", 2)
    return list(dict.fromkeys(requested))


# ------------------------------------------------------------------------------------------ settings


def load_settings() -> Any:
    """`orchard.settings.load_settings()` from the environment (ORCHARD_*), as the DAGs read them.

    Airflow Variables are not read here: the demo's database is new, and this process is not an Airflow
    component. Set ORCHARD_* in the environment of `make demo` / `make up` to change buckets or region.
    """
    if str(PLUGINS_FOLDER) not in sys.path:
        sys.path.insert(0, str(PLUGINS_FOLDER))
    from orchard.settings import load_settings as _load

    return _load(variables=False)


def bucket_names(settings: Any) -> list[str]:
    """Every bucket the settings name (fields ending in `_bucket`)."""
    names = {
        getattr(settings, name)
        for name in dir(settings)
        if name.endswith("_bucket") and not name.startswith("_") and isinstance(getattr(settings, name), str)
    }
    return sorted(n for n in names if n)


# ------------------------------------------------------------------------------------------ processes


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` (as uvicorn and werkzeug do: SO_REUSEADDR, so a port
    whose last connections are in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """`preferred` when nothing listens on it, else a free port the OS picks."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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


def airflow_env(
    home: Path,
    dags: Path,
    *,
    db_path: Path | None = None,
    api_port: int = DEFAULT_API_PORT,
    api_host: str = "127.0.0.1",
    sandbox_url: str | None = None,
    schedules: bool = False,
) -> dict[str, str]:
    """The environment every Airflow process of the stack runs with."""
    db_path = db_path or home / "airflow.db"
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            # one bundle, the dags folder: what the demo lists, triggers and reports on
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [{"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}}]
            ),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(home)),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db_path}",
            "AIRFLOW__API__HOST": api_host,
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # Runs start when triggered, not from a schedule or an Asset event: the demo runs each DAG once
            # with its own demo data (`up --schedules` turns them back on).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(schedules),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(deployed_layout_env(env))
    if sandbox_url:
        env.update(local_aws.client_env(sandbox_url))
        # Airflow runs under the demo role holding the pipelines' policies (seed() creates it)
        from local_aws.iam_setup import DEMO_AIRFLOW_ROLE_ARN

        env["AIRFLOW_CONN_AWS_DEFAULT"] = local_aws.aws_connection(
            sandbox_url, role_arn=DEMO_AIRFLOW_ROLE_ARN)
        # The sandbox's jobs and clusters are ready in seconds: DAGs that read their poll delay from the
        # environment (fruit_features, auto_labeling) wait at that pace, not AWS's 30 s.
        env.setdefault("ORCHARD_POLL_SECONDS", "2")
        # The trigger forms' defaults: the demo's, once `up` has uploaded its data (orchard.params).
        env.setdefault("ORCHARD_PARAM_DEFAULTS", str(param_defaults_path(db_path)))
    return env


def param_defaults_path(db_path: Path) -> Path:
    """`{dag_id: {param: value}}` the DAGs take as their form's defaults (orchard.params.with_defaults);
    per database, so that `make demo` (demo.db, explicit confs) never reads what `make up` wrote."""
    return db_path.parent / f"{db_path.stem}.param_defaults.json"


def write_param_defaults(db_path: Path, confs: dict[str, dict]) -> Path:
    """Write the demo confs as the forms' defaults (atomically: the DAG processor may be reading it)."""
    path = param_defaults_path(db_path)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps({dag_id: conf for dag_id, conf in confs.items() if conf}, indent=1))
    scratch.replace(path)
    return path


def deployed_layout_env(env: dict[str, str]) -> dict[str, str]:
    """What keeps Airflow's processes to what a deployment ships, as docker-compose and MWAA do: only
    `dags/` and `plugins/` importable (Airflow adds both to sys.path itself). The repository root leaves
    PYTHONPATH, and PYTHONSAFEPATH=1 stops `python -m airflow` / `-c` from putting the working directory
    first on sys.path, so `include` and `local_aws` cannot be imported by a DAG or a task."""
    root = REPO_ROOT.resolve()
    kept = [
        entry
        for entry in env.get("PYTHONPATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() != root
    ]
    return {"PYTHONPATH": os.pathsep.join(kept), "PYTHONSAFEPATH": "1"}


def deploy_job_code(s3: Any, settings: Any) -> dict[str, dict]:
    """The deploy step (`make deploy`) against the sandbox: the job code AWS runs from S3, where the DAGs
    look for it (`orchard.job_code`)."""
    from deploy.job_code import DeployError, deploy

    try:
        return deploy(bucket=settings.artifacts_bucket, image_tag=settings.image_tag, s3=s3)
    except DeployError as error:
        raise StackError(f"the deploy step (make deploy) failed against the sandbox: {error}") from None


def password_file(home: Path) -> Path:
    return home / "simple_auth_manager_passwords.json.generated"


def admin_password(home: Path) -> str:
    """The admin password of the stack's SimpleAuthManager, created once and kept in `.airflow/`."""
    path = password_file(home)
    passwords = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            passwords = json.loads(path.read_text() or "{}")
    if ADMIN_USER not in passwords:
        passwords[ADMIN_USER] = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords) + "\n")
        path.chmod(0o600)
    return passwords[ADMIN_USER]


class Stack:
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
        say=print,
    ):
        self.home = home or airflow_home()
        self.dags = dags or dags_folder()
        self.sandbox_port = sandbox_port
        self.api_port = api_port
        self.api_host = api_host
        self.fresh_db = fresh_db
        self.schedules = schedules
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
        self.init_airflow()
        self.start_airflow(startup_timeout_s)
        return self

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
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        child = self._spawn(
            "sandbox",
            [sys.executable, "-m", "local_aws", "serve", "--port", str(self.sandbox_port)],
            env,
        )
        from local_aws.server import is_up

        deadline = time.monotonic() + timeout_s
        while not is_up(self.sandbox_url):
            self._check_alive(child)
            if time.monotonic() > deadline:
                raise StackError(f"the sandbox did not answer on {self.sandbox_url} in {timeout_s:.0f} s")
            time.sleep(0.2)
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
            self._spawn(component, [sys.executable, "-m", "airflow", component], env, cwd=self.home)
        deadline = time.monotonic() + timeout_s
        health: dict = {}
        while True:
            for child in self.children:
                self._check_alive(child)
            with contextlib.suppress(OSError, ValueError):
                health = self._get_json("/api/v2/monitor/health", auth=False)
                statuses = [health.get(k, {}).get("status") for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")]
                if all(s == "healthy" for s in statuses):
                    break
            if time.monotonic() > deadline:
                raise StackError(
                    f"Airflow was not healthy after {timeout_s:.0f} s: {health or 'api-server not answering'}; "
                    f"logs in {_shown(self.log_dir)}/"
                )
            time.sleep(1)
        self.say(f"stack: Airflow up on {self.ui_url} (scheduler, dag-processor, triggerer, api-server; "
                 f"logs in {_shown(self.log_dir)}/)")

    def dead_children(self) -> list[Child]:
        return [c for c in self.children if not c.alive()]

    def stop(self, grace_s: float = 10) -> None:
        """Stop every process started, in three steps, each given `grace_s` to exit before SIGKILL:
        the scheduler (with the tasks it runs), triggerer and dag-processor; then the api-server (tasks
        report to it until they end); then the sandbox (tasks and triggers talk to it)."""
        if not self.children:
            return
        steps = (
            [c for c in self.children if c.name in ("scheduler", "triggerer", "dag-processor")],
            [c for c in self.children if c.name == "api-server"],
            [c for c in self.children if c.name == "sandbox"],
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

    # -- REST API (/api/v2, JWT from SimpleAuthManager's /auth/token)
    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": ADMIN_USER, "password": admin_password(self.home)}).encode()
            request = urllib.request.Request(
                f"{self.api_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.loads(response.read())["access_token"]
        return self._token

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True, timeout: float = 30) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def _get_json(self, path: str, auth: bool = True) -> Any:
        return self._request("GET", path, auth=auth)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call /api/v2 (retrying transient errors: SQLite is busy now and then with four writers)."""
        for attempt in range(5):
            try:
                return self._request(method, f"/api/v2{path}", body)
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:
                    self._token = None
                    continue
                if err.code < 500 or attempt == 4:
                    detail = err.read().decode(errors="replace")[:500]
                    raise StackError(f"{method} /api/v2{path} → {err.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt == 4:
                    raise
            time.sleep(1 + attempt)
        raise AssertionError("unreachable")

    # -- the sandbox, seen from here
    def s3_client(self):
        return local_aws.sandbox_client("s3", self.sandbox_url)

    def seed(self, dag_ids: Iterable[str], failures: dict[str, str] | None = None) -> dict[str, dict]:
        """Create the buckets the settings name and upload each DAG's demo data; the confs to run them with.

        With `failures`, a DAG whose demo data fails to upload is left out of the confs and its traceback
        goes to `failures[dag_id]`, so the other DAGs still run; without it, the error is raised.
        """
        from local_aws import demo_data

        # the settings as the DAGs will see them: same ORCHARD_* environment, endpoint on the sandbox
        with _environ(local_aws.client_env(self.sandbox_url)):
            settings = load_settings()
        from local_aws.iam_setup import DEMO_AIRFLOW_ROLE, IAM_FOLDER, create_pipeline_roles, settings_buckets

        dag_ids = list(dag_ids)
        with_policy = [d for d in dag_ids if (IAM_FOLDER / f"{d}.json").exists()]
        if with_policy:  # the roles Airflow and the jobs run as (include/iam), before anything runs
            create_pipeline_roles(self.sandbox_url, with_policy, airflow_role=DEMO_AIRFLOW_ROLE,
                                  buckets=settings_buckets(settings))
        s3 = self.s3_client()
        for bucket in bucket_names(settings):
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=bucket)
        for name, manifest in deploy_job_code(s3, settings).items():
            self.say(f"stack: deployed job code {name} → {manifest['prefix']}")
        if failures is None:
            return demo_data.upload_all(s3, list(dag_ids), settings)
        confs = {}
        for dag_id in dag_ids:
            try:
                confs.update(demo_data.upload_all(s3, [dag_id], settings))
            except Exception:
                failures[dag_id] = traceback.format_exc()
        return confs


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


# ----------------------------------------------------------------------------------------------- demo


@dataclass
class RunResult:
    dag_id: str
    run_id: str = "-"
    state: str = "not started"
    duration_s: float | None = None
    report_uri: str = "-"
    failed_tasks: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def summary_line(succeeded: int, total: int, seconds: float) -> str:
    """The demo's very last line."""
    return f"demo: {succeeded}/{total} runs succeeded in {round(seconds)} s"


def format_table(results: Sequence[RunResult]) -> str:
    rows = [("DAG", "state", "duration", "report")]
    for r in results:
        duration = "-" if r.duration_s is None else f"{r.duration_s:.0f} s"
        rows.append((r.dag_id, r.state, duration, r.report_uri))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * max(6, max(len(r[3]) for r in rows)))
    return "\n".join(line.rstrip() for line in lines)


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _run_result(stack: Stack, dag_id: str, run_id: str, run: dict) -> RunResult:
    result = RunResult(dag_id, run_id, run["state"])
    start, end = _parse_time(run.get("start_date")), _parse_time(run.get("end_date"))
    if run.get("duration") is not None:
        result.duration_s = float(run["duration"])
    elif start:
        result.duration_s = ((end or dt.datetime.now(dt.timezone.utc)) - start).total_seconds()
    quoted = urllib.parse.quote(run_id, safe="")
    with contextlib.suppress(StackError):
        entries = stack.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/~/xcomEntries?xcom_key=report_uri")
        for entry in entries.get("xcom_entries", []):
            value = stack.api(
                "GET",
                f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{entry['task_id']}/xcomEntries/report_uri"
                f"?map_index={entry.get('map_index', -1)}",
            ).get("value")
            if isinstance(value, str) and value:
                result.report_uri = value
                break
    if not result.succeeded:
        with contextlib.suppress(StackError):
            tis = stack.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")
            result.failed_tasks = sorted(
                ti["task_id"] for ti in tis.get("task_instances", []) if ti.get("state") in ("failed", "upstream_failed")
            )
    return result


def wait_until_parsed(stack: Stack, found: DagFolder, dag_ids: Sequence[str], timeout_s: float) -> dict[str, str]:
    """Wait until the dag-processor has stored every DAG (triggering needs the serialized DAG).

    Returns the DAGs it could not load, with why: an import error it reported for the DAG's file (known
    at once), or no DAG after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(dag_ids)
    files = {d: Path(found.dags[d]).name for d in dag_ids if d in found.dags}
    failed: dict[str, str] = {}
    while True:
        for child in stack.children:
            stack._check_alive(child)
        still = []
        for dag_id in pending:
            try:
                stack.api("GET", f"/dags/{dag_id}")
            except StackError:
                still.append(dag_id)
        pending = still
        if pending:
            errors = {
                Path(e.get("filename") or "").name: (e.get("stack_trace") or "").strip()
                for e in stack.api("GET", "/importErrors?limit=1000").get("import_errors", [])
            }
            for dag_id in list(pending):
                if files.get(dag_id) in errors:
                    failed[dag_id] = errors[files[dag_id]]
                    pending.remove(dag_id)
        if not pending:
            return failed
        if time.monotonic() > deadline:
            failed.update({d: f"not loaded by the dag-processor after {timeout_s:.0f} s" for d in pending})
            return failed
        time.sleep(1)


def _quoted(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def trigger(stack: Stack, dag_ids: Sequence[str], confs: dict[str, dict], say=print) -> dict[str, RunResult]:
    """Unpause each DAG and start one run of it with its conf; run ids are `demo__<UTC time>`."""
    run_id = f"demo__{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}"
    results = {}
    for dag_id in dag_ids:
        stack.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        stack.api(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": confs.get(dag_id, {})},
        )
        results[dag_id] = RunResult(dag_id, run_id, "queued")
        say(f"demo: triggered {dag_id} ({run_id})")
    return results


def triggered_by_upload(dag_ids: Iterable[str]) -> list[str]:
    """DAGs whose demo upload itself starts their run (an S3 upload → EventBridge → SQS → Asset watcher):
    their `local_aws/demo_data/<dag_id>.py` sets `TRIGGERED_BY_UPLOAD = True`. The demo does not trigger
    them through the API; it unpauses them and waits for the run their upload starts."""
    import importlib

    from local_aws import demo_data

    registered = set(demo_data.module_names())
    return [
        dag_id
        for dag_id in dag_ids
        if dag_id in registered
        and getattr(importlib.import_module(f"{demo_data.__name__}.{dag_id}"), "TRIGGERED_BY_UPLOAD", False)
    ]


def await_upload_runs(
    stack: Stack, dag_ids: Sequence[str], timeout_s: float, poll_s: float = 2.0, say=print
) -> dict[str, RunResult]:
    """Unpause each DAG and wait for the asset-triggered run its demo upload starts (the dag-processor
    registers the Asset watcher on its next parse of the unpaused DAG; the triggerer then reads the queue)."""
    results = {}
    for dag_id in dag_ids:
        stack.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        results[dag_id] = RunResult(dag_id, state="waiting for its upload's run")
        say(f"demo: unpaused {dag_id}; its run starts from the demo upload (S3 → EventBridge → SQS → Asset)")
    deadline = time.monotonic() + timeout_s
    pending = list(dag_ids)
    while pending and time.monotonic() < deadline:
        for dag_id in list(pending):
            runs = stack.api("GET", f"/dags/{dag_id}/dagRuns?limit=100").get("dag_runs", [])
            triggered = [r for r in runs if r.get("run_type") == "asset_triggered"]
            if triggered:
                results[dag_id] = RunResult(dag_id, triggered[0]["dag_run_id"], triggered[0]["state"])
                say(f"demo: {dag_id} started by its upload ({triggered[0]['dag_run_id']})")
                pending.remove(dag_id)
        time.sleep(poll_s)
    for dag_id in pending:
        results[dag_id].state = f"no run from its upload after {timeout_s:.0f} s"
    return results


def wait_for_runs(
    stack: Stack, results: dict[str, RunResult], deadline: float, poll_s: float, say=print
) -> None:
    """Poll each run until it succeeds or fails, or until `deadline` (time.monotonic()); update `results`."""
    pending = sorted(d for d, r in results.items() if r.run_id != "-")
    while pending:
        for dag_id in list(pending):
            result = results[dag_id]
            run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{_quoted(result.run_id)}")
            if run["state"] != result.state:
                result.state = run["state"]
                say(f"demo: {dag_id} {run['state']}")
            if run["state"] in TERMINAL_STATES:
                results[dag_id] = _run_result(stack, dag_id, result.run_id, run)
                pending.remove(dag_id)
        if not pending:
            return
        dead = stack.dead_children()
        if dead:
            stack._check_alive(dead[0])
        if time.monotonic() > deadline:
            for dag_id in pending:
                run_id = results[dag_id].run_id
                run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{_quoted(run_id)}")
                results[dag_id] = _run_result(stack, dag_id, run_id, run)
                results[dag_id].state = f"timed out ({run['state']})"
            say("demo: timed out")
            return
        time.sleep(poll_s)


def run_demo(
    requested: Sequence[str] | None = None,
    *,
    timeout_s: float = DEFAULT_DEMO_TIMEOUT_S,
    sandbox_port: int = DEFAULT_PORT,
    api_port: int = DEFAULT_API_PORT,
    poll_s: float = 3.0,
    say=print,
) -> int:
    """`make demo`: run every DAG (or `requested`) once on the local stack; 0 only if every run succeeded.

    Its last line is always `summary_line(...)` once the DAGs to run are known.
    """
    started = time.monotonic()
    folder = dags_folder()
    home = airflow_home()
    found = list_dags(folder, airflow_env(home, folder, db_path=home / "demo.db"))
    if not found.dags and not found.import_errors and not requested:
        say(f"demo: no DAGs in {_shown(folder)}/ yet — nothing to run")
        say(summary_line(0, 0, time.monotonic() - started))
        return 0
    dag_ids = select_dags(found, requested)
    if found.import_errors and not requested:
        errors = "\n".join(
            f"  {path}:\n    " + err.strip()[-1500:].replace("\n", "\n    ")
            for path, err in found.import_errors.items()
        )
        raise StackError(
            f"demo: {len(found.import_errors)} file(s) in {_shown(folder)}/ failed to import:\n{errors}\n"
            f"fix them, or run only the DAGs that load: make demo DAGS=\"{' '.join(dag_ids)}\""
        )

    say(f"demo: {len(dag_ids)} DAG(s): {', '.join(dag_ids)}")
    results = {d: RunResult(d) for d in dag_ids}
    by_upload = triggered_by_upload(dag_ids)
    stack = Stack(
        home=home,
        dags=folder,
        sandbox_port=pick_port(sandbox_port),
        api_port=pick_port(api_port),
        fresh_db=True,
        db_name="demo.db",
        # Asset-triggered runs are created by the scheduler's job scheduling: on only when a DAG's run
        # comes from its upload (a DAG with a time schedule then also gets its scheduled run).
        schedules=bool(by_upload),
        say=say,
    )
    interrupted = False
    try:
        with _signals_as_interrupts():
            try:
                stack.start()
                no_data: dict[str, str] = {}
                confs = stack.seed(dag_ids, failures=no_data)
                say(f"demo: demo data uploaded for {', '.join(d for d in dag_ids if confs.get(d)) or 'no DAG'}")
                for dag_id, why in no_data.items():
                    results[dag_id].state = "demo data failed"
                    say(f"demo: the demo data of {dag_id} failed to upload:\n    " + why.strip().replace("\n", "\n    "))
                to_run = [d for d in dag_ids if d not in no_data]
                unloaded = wait_until_parsed(stack, found, to_run, timeout_s=min(300.0, timeout_s))
                for dag_id, why in unloaded.items():
                    results[dag_id].state = "import error"
                    say(f"demo: Airflow could not load {dag_id}:\n    " + why[-1500:].replace("\n", "\n    "))
                loaded = [d for d in to_run if d not in unloaded]
                results.update(trigger(stack, [d for d in loaded if d not in by_upload], confs, say))
                results.update(await_upload_runs(stack, [d for d in loaded if d in by_upload], 300.0, say=say))
                wait_for_runs(stack, results, started + timeout_s, poll_s, say)
            except StackError as err:
                say(str(err))
            except (KeyboardInterrupt, Interrupted) as err:
                interrupted = True
                for r in results.values():
                    if r.state not in TERMINAL_STATES:
                        r.state = f"interrupted ({r.state})"
                say(f"demo: interrupted ({'Ctrl-C' if isinstance(err, KeyboardInterrupt) else err}) — stopping; "
                    "Ctrl-C again kills at once")
            except Exception:  # a pipeline's demo data, an API answer we did not expect: report, then stop
                say(f"demo: failed\n{traceback.format_exc()}")
            finally:
                say("")
                say(format_table([results[d] for d in dag_ids]))
                for r in results.values():
                    if r.failed_tasks:
                        say(f"  {r.dag_id}: failed task(s) {', '.join(r.failed_tasks)} — logs in "
                            f"{_shown(home / 'logs' / f'dag_id={r.dag_id}' / f'run_id={r.run_id}')}/")
                say("")
                stack.stop()
    finally:
        succeeded = sum(r.succeeded for r in results.values())
        say(summary_line(succeeded, len(results), time.monotonic() - started))
    if interrupted:
        return 130
    return 0 if succeeded == len(results) else 1


# ------------------------------------------------------------------------------------------------- up


def run_up(
    *,
    sandbox_port: int = DEFAULT_PORT,
    api_port: int = DEFAULT_API_PORT,
    api_host: str = "127.0.0.1",
    schedules: bool = False,
    say=print,
) -> int:
    """`make up`: the stack in the foreground, web UI on http://localhost:8080, until Ctrl-C."""
    if not port_is_free(api_port, api_host):
        raise StackError(f"up: port {api_port} is in use; stop what runs there or pass --port")
    folder = dags_folder()
    home = airflow_home()
    stack = Stack(
        home=home,
        dags=folder,
        sandbox_port=pick_port(sandbox_port),
        api_port=api_port,
        api_host=api_host,
        schedules=schedules,
        say=say,
    )
    with _signals_as_interrupts():
        try:
            param_defaults_path(stack.db_path).unlink(missing_ok=True)  # another checkout's: stale
            stack.start()
            found = list_dags(folder, stack.env())
            confs = stack.seed(found.dags)
            defaults = write_param_defaults(stack.db_path, confs)  # the DAG processor re-parses within 30 s
            say("")
            say(f"up: Airflow UI   {stack.ui_url}")
            say(f"up: log in as    {ADMIN_USER} / {admin_password(home)}"
                f"   (password kept in {_shown(password_file(home))})")
            say(f"up: sandbox      {stack.sandbox_url}   (AWS_ENDPOINT_URL={stack.sandbox_url}, "
                "AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing)")
            say(f"up: DAGs         {', '.join(found.dags) or f'none in {_shown(folder)}/ yet'}")
            for dag_id, conf in confs.items():
                if conf:
                    say(f"up: demo data for {dag_id} is uploaded; trigger it with conf {json.dumps(conf)}")
            say(f"up: the trigger forms default to these confs ({_shown(defaults)}, read within 30 s): "
                "the Trigger button alone runs each pipeline")
            if found.import_errors:
                say(f"up: import errors in {', '.join(found.import_errors)} (see the UI)")
            if schedules:
                say("up: schedules and Asset triggers are on. Ctrl-C stops everything.")
            else:
                say("up: schedules and Asset triggers are off (--schedules turns them on): trigger DAGs from "
                    "the UI. Ctrl-C stops everything.")
            while True:
                dead = stack.dead_children()
                if dead:
                    stack._check_alive(dead[0])
                time.sleep(1)
        except (KeyboardInterrupt, Interrupted):
            say("")
            say("up: stopping")
            return 0
        finally:
            stack.stop()
