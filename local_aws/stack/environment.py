"""Where the stack lives and what its Airflow processes run with: paths, settings, the environment."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import local_aws

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PLUGINS_FOLDER = REPO_ROOT / "plugins"

DAGS_FOLDER_ENV = "ORCHARD_DAGS_FOLDER"  # default: dags/ of the repository
AIRFLOW_HOME_ENV = "ORCHARD_AIRFLOW_HOME"  # default: .airflow/ of the repository
DEFAULT_API_PORT = 8080
ADMIN_USER = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


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


# ------------------------------------------------------------------------------------- environment

# What every task process of the pipelines imports before its operator runs (benchmarks/task_start_time.py):
# Airflow's task runner and DAG parser; the plugin file the task's listener manager loads (orchard_ui: with
# `fork`, the workers inherited it from the scheduler, which loads the plugins when it starts); the
# providers' modules the DAG files import, and boto3; and matplotlib, which the report tasks import.
# orchard's DAG-side modules (orchard.operators, ...) are left out: each task imports them afresh, so an
# edit to them needs no restart.
TASK_PRELOAD_MODULES = (
    "airflow.executors.local_executor",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.sdk.definitions.decorators",
    "airflow.dag_processing.dagbag",
    "orchard_ui",
    "boto3",
    "airflow.providers.amazon.aws.hooks.s3",
    "airflow.providers.amazon.aws.hooks.logs",
    "airflow.providers.amazon.aws.assets.s3",
    "airflow.providers.amazon.aws.assets.redshift",
    "airflow.providers.amazon.aws.operators.batch",
    "airflow.providers.amazon.aws.operators.emr",
    "airflow.providers.amazon.aws.operators.sagemaker",
    "airflow.providers.amazon.aws.sensors.emr",
    "airflow.providers.amazon.aws.triggers.sqs",
    "airflow.providers.common.io.assets.file",
    "airflow.providers.standard.decorators.branch_python",
    "airflow.providers.standard.decorators.python",
    "airflow.providers.standard.decorators.short_circuit",
    "airflow.providers.standard.operators.empty",
    "airflow.providers.standard.operators.hitl",
    # what the report tasks import to render their figures (orchard.reports; numpy also for the drift
    # summary): 4-6 s a task on the loaded 2 cores, matplotlib's font cache included
    "numpy",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    # last, once Airflow has put plugins/ on sys.path: orchard's shared botocore loader, filled with the JSON
    # the tasks' AWS clients parse (endpoints, their services' models), so a task's first hook parses none
    # (plugins/orchard/aws_preload.py; benchmarks/aws_hook_warm_loader.py)
    "orchard.aws_preload",
    # after every module that imports others: inspect's file → module map of the preloaded modules, which the
    # provider's user-agent stack walk (AwsGenericHook._get_caller) built in each task on its first client,
    # 0.5-1.4 s (plugins/orchard/caller_preload.py; benchmarks/aws_hook_caller_time.py)
    "orchard.caller_preload",
    # the very last: gc.freeze(), so the tasks share the preloaded objects instead of copying them on their
    # first full garbage collection (plugins/orchard/preload_freeze.py)
    "orchard.preload_freeze",
)

# Airflow's LocalExecutor, except that a deferrable task resumed within seconds of its deferral is not failed
# by the late exit report of its first process (apache/airflow#72716; plugins/orchard/local_executor.py).
# docker-compose.yaml's default too.
LOCAL_EXECUTOR = "orchard.local_executor.LocalExecutor"

# The local stack's tuning for a machine that is busy (issue 17): 2 cores running Airflow's four processes,
# the sandbox and the jobs. Keys from Airflow's configuration reference ("Configuration Reference",
# https://airflow.apache.org/docs/apache-airflow/stable/configurations-ref.html); benchmarks/
# airflow_overhead.py --baseline starts the stack with the values these replace.
STACK_TUNING = {
    # A task's calls to the execution API (its start, heartbeats, XCom): Airflow's 5 s timeout and 5 tries
    # ("Increase this value if you experience timeout errors under high load") lost whole demo runs on a
    # loaded machine: `check_inputs` failed before it started. 30 s and 10 tries, waits of at most 30 s.
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "30",
    # Every DAG file was re-parsed every 30 s, on the same 2 cores as the runs. The dag-processor parses a
    # file again at once when it changed (file_parsing_sort_mode "modified_time", the default), and the
    # stack asks for a parse when a DAG started by its upload is unpaused (its Asset watcher is registered
    # by a parse): otherwise, every 5 minutes is enough.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
    # Each task process is forked by a LocalExecutor worker and then imports what its DAG file needs (the
    # Amazon provider, boto3/botocore) before the operator runs: a second or more per task on a busy
    # machine. Airflow 3.3's `[scheduler] mp_start_method = forkserver` with `mp_forkserver_preload` starts
    # the workers from a process that imported those modules once ("forked workers inherit them
    # copy-on-write instead of re-importing them"), so every task inherits them (TASK_PRELOAD_MODULES).
    # benchmarks/task_start_time.py measures a task process's start under both start methods.
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join(TASK_PRELOAD_MODULES),
    # Every Amazon-provider hook built a boto3 session with its own botocore data loader (two with the
    # demo's role_arn: AssumeRole) and parsed endpoints.json and its service models again. orchard's factory
    # gives every session of a process one loader (plugins/orchard/aws_session.py; "[aws] session_factory"
    # in the Amazon provider's configuration reference); docker-compose.yaml sets it too. A task's second
    # and later hooks: 0.70 s -> 0.07 s each (benchmarks/aws_hook_session_time.py, docs/sandbox.md §24).
    "AIRFLOW__AWS__SESSION_FACTORY": "orchard.aws_session.SharedLoaderSessionFactory",
    # Not set: `[scheduler] scheduler_idle_sleep_time` stays Airflow's 1 s. A downstream task is queued by
    # the scheduler's first loop after its upstream ended; 0.1 s cut that wait (0.64 -> 0.35 s) but tripled
    # the scheduler's CPU while runs ran (6x idle), the tasks' parse slowed on the 2 cores, and the whole
    # handoff was no shorter (1.07x); 0.25 and 0.5 s: 1.33x, 1.19x under load (benchmarks/
    # task_handoff_time.py, docs/architecture.md "Task handoffs"). At load ~10, though, 0.25 s gave 0.69x
    # (3x the scheduler's idle CPU). Whole demos alternating 0.25 s / 1 s (2 each, load 12-21 from other work):
    # overhead 34/32 % aerial, 51/51 % auto_labeling, 76/74 % edge, 25/21 % fruit, 15/16 % pose in the pair
    # run at the same load, no gain anywhere (benchmarks/airflow_overhead.py with
    # AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.25 exported): 1 s stays. `[api] workers = 2`: 1.02x.
}


def airflow_env(
    home: Path,
    dags: Path,
    *,
    db_path: Path | None = None,
    api_port: int = DEFAULT_API_PORT,
    api_host: str = "127.0.0.1",
    sandbox_url: str | None = None,
    schedules: bool = False,
    celery_broker_url: str | None = None,
    celery_workers: int = 0,
) -> dict[str, str]:
    """The environment every Airflow process of the stack runs with (CeleryExecutor with a broker URL)."""
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
            "AIRFLOW__CORE__EXECUTOR": LOCAL_EXECUTOR,
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
            **STACK_TUNING,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(deployed_layout_env(env))
    if celery_broker_url:
        env.update(celery_env(home, celery_broker_url, celery_workers))
    if sandbox_url:
        env.update(local_aws.client_env(sandbox_url))
        # Airflow runs under the demo role holding the pipelines' policies (seed() creates it)
        from local_aws.iam_setup import DEMO_AIRFLOW_ROLE_ARN

        env["AIRFLOW_CONN_AWS_DEFAULT"] = local_aws.aws_connection(
            sandbox_url, role_arn=DEMO_AIRFLOW_ROLE_ARN
        )
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


def celery_env(home: Path, broker_url: str, workers: int) -> dict[str, str]:
    """CeleryExecutor on the local stack (`make demo EXECUTOR=celery WORKERS=2`): Redis as the broker, the
    results in a SQLite file beside the metadata DB, the stack's parallelism shared by the workers
    ("Celery Executor", https://airflow.apache.org/docs/apache-airflow-providers-celery/stable/celery_executor.html)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+sqlite:///{home / 'celery-results.db'}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(max(1, 8 // max(1, workers))),
    }


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
