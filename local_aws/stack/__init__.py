"""The local stack: the sandbox and Airflow wired to it, as `make demo` and `make up` run them.

One `Stack` starts, as child processes of this one, the sandbox (`python -m local_aws serve`) and
Airflow's scheduler, dag-processor, triggerer and api-server on an SQLite database in `.airflow/`
(LocalExecutor, SimpleAuthManager). Every Airflow process gets the AWS connection and the `AWS_*`
variables that point boto3 / aiobotocore at the sandbox, so the DAGs run unchanged. `Stack.stop()`
stops all of them (also on Ctrl-C, SIGTERM or a failure); if this process is killed outright, Linux
sends each child SIGTERM (PR_SET_PDEATHSIG).

`run_demo()` triggers every DAG (or the ones asked for) with its demo data and reports; `run_up()`
leaves the stack running with the web UI.

Modules, along the stack's seams: `environment` (paths, settings, the Airflow processes' environment),
`dags` (DAG discovery), `ports`, `processes` (`Stack`: start, health, stop), `api` (Airflow's REST API
client), `seed` (roles, buckets, job code, demo data in the sandbox), `demo` (`make demo`), `up` (`make up`,
`make stop`, `make logs`), `prereqs` (what the machine needs, checked before demo / up / test).
This module re-exports their public names, so `from local_aws import stack; stack.X` keeps working.
"""

from __future__ import annotations

from local_aws.stack.api import RestApi
from local_aws.stack.dags import DagFolder, candidate_files, list_dags, select_dags
from local_aws.stack.demo import (
    DEFAULT_DEMO_TIMEOUT_S,
    TERMINAL_STATES,
    RunResult,
    await_upload_runs,
    celery_spread,
    celery_workloads,
    format_table,
    run_demo,
    summary_line,
    trigger,
    triggered_by_upload,
    wait_for_runs,
    wait_until_parsed,
)
from local_aws.stack.environment import (
    ADMIN_USER,
    AIRFLOW_HOME_ENV,
    DAGS_FOLDER_ENV,
    DEFAULT_API_PORT,
    LOCAL_BUNDLE,
    LOCAL_EXECUTOR,
    PLUGINS_FOLDER,
    REPO_ROOT,
    SIMPLE_AUTH_MANAGER,
    admin_password,
    airflow_env,
    airflow_home,
    bucket_names,
    dags_folder,
    deployed_layout_env,
    load_settings,
    param_defaults_path,
    password_file,
    write_param_defaults,
)
from local_aws.stack.errors import Interrupted, StackError
from local_aws.stack.ports import attach_requested, claim_port, claim_stack_ports, pick_port, port_is_free
from local_aws.stack.processes import AIRFLOW_COMPONENTS, Child, Stack
from local_aws.stack.seed import deploy_job_code, seed
from local_aws.stack.up import follow_logs, run_up, start_detached, stop_detached

__all__ = [
    "param_defaults_path",
    "write_param_defaults",
    "ADMIN_USER",
    "AIRFLOW_COMPONENTS",
    "AIRFLOW_HOME_ENV",
    "DAGS_FOLDER_ENV",
    "DEFAULT_API_PORT",
    "DEFAULT_DEMO_TIMEOUT_S",
    "LOCAL_BUNDLE",
    "LOCAL_EXECUTOR",
    "PLUGINS_FOLDER",
    "REPO_ROOT",
    "SIMPLE_AUTH_MANAGER",
    "TERMINAL_STATES",
    "Child",
    "DagFolder",
    "Interrupted",
    "RestApi",
    "RunResult",
    "Stack",
    "StackError",
    "admin_password",
    "airflow_env",
    "airflow_home",
    "attach_requested",
    "await_upload_runs",
    "bucket_names",
    "candidate_files",
    "celery_spread",
    "celery_workloads",
    "claim_port",
    "claim_stack_ports",
    "dags_folder",
    "deploy_job_code",
    "deployed_layout_env",
    "follow_logs",
    "format_table",
    "list_dags",
    "load_settings",
    "password_file",
    "pick_port",
    "port_is_free",
    "run_demo",
    "run_up",
    "seed",
    "select_dags",
    "start_detached",
    "stop_detached",
    "summary_line",
    "trigger",
    "triggered_by_upload",
    "wait_for_runs",
    "wait_until_parsed",
]
