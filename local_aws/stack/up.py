"""`make up`: the stack with the web UI, until stopped — in the background, as `astro dev start` runs it.

`make up` runs `python -m local_aws up --detach`: it starts `python -m local_aws up` (the foreground stack
below) as a process of its own session, its output in `.airflow/logs/stack/up.log` and its pid in
`.airflow/up.pid`, shows what that process prints until the stack is ready, and returns. `make stop` sends
that process SIGTERM (it stops its children in order, as on Ctrl-C), `make logs` follows the stack's logs,
`make restart` is stop then up. `make up FOREGROUND=1` runs the stack in the terminal until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from local_aws import DEFAULT_PORT
from local_aws.stack.dags import list_dags
from local_aws.stack.environment import (
    ADMIN_USER,
    DEFAULT_API_PORT,
    REPO_ROOT,
    _shown,
    admin_password,
    airflow_env,
    airflow_home,
    dags_folder,
    param_defaults_path,
    password_file,
    write_param_defaults,
)
from local_aws.stack.errors import Interrupted, StackError
from local_aws.stack.ports import attach_requested, claim_stack_ports
from local_aws.stack.processes import Stack, _signals_as_interrupts

READY = "stops everything."  # the end of the last line `up` prints once the stack is ready


def run_up(
    *,
    sandbox_port: int = DEFAULT_PORT,
    api_port: int = DEFAULT_API_PORT,
    api_host: str = "127.0.0.1",
    schedules: bool | None = None,
    attach_sandbox: bool | None = None,
    detached: bool = False,
    say=print,
) -> int:
    """The stack in the foreground, web UI on http://localhost:8080, until Ctrl-C / SIGTERM.

    `schedules`: None (default) turns the scheduler's run creation on exactly when a DAG's demo run starts
    from its upload (pose_training: S3 → EventBridge → SQS → Asset watcher), as `make demo` does. The
    pipelines have no time schedule, so that only lets Asset events start runs of unpaused DAGs. With
    schedules off (False), the triggerer would still consume such an upload from the queue into an Asset
    event whose run is never created; so the demo data of those DAGs is then not uploaded.
    """
    from local_aws.stack.demo import triggered_by_upload

    attach = attach_sandbox if attach_sandbox is not None else attach_requested()
    sandbox_port, api_port = claim_stack_ports("up", sandbox_port, api_port, api_host, attach=attach)
    folder = dags_folder()
    home = airflow_home()
    found = list_dags(folder, airflow_env(home, folder))
    by_upload = triggered_by_upload(found.dags)
    if schedules is None:
        schedules = bool(by_upload)
    stack = Stack(
        home=home,
        dags=folder,
        sandbox_port=sandbox_port,
        api_port=api_port,
        api_host=api_host,
        schedules=schedules,
        attach_sandbox=attach,
        say=say,
    )
    stop_how = "`make stop` stops everything." if detached else "Ctrl-C stops everything."
    with _signals_as_interrupts():
        try:
            param_defaults_path(stack.db_path).unlink(missing_ok=True)  # another checkout's: stale
            stack.start()
            skipped = [] if schedules else by_upload
            confs = stack.seed(found.dags, skip_upload=skipped)
            defaults = write_param_defaults(stack.db_path, confs)
            reparse_for_defaults(stack, found)
            say("")
            say(f"up: Airflow UI   {stack.ui_url}")
            say(
                f"up: log in as    {ADMIN_USER} / {admin_password(home)}"
                f"   (password kept in {_shown(password_file(home))})"
            )
            say(
                f"up: sandbox      {stack.sandbox_url}   (AWS_ENDPOINT_URL={stack.sandbox_url}, "
                "AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing)"
            )
            say(f"up: DAGs         {', '.join(found.dags) or f'none in {_shown(folder)}/ yet'}")
            for dag_id, conf in confs.items():
                if dag_id in by_upload:
                    say(
                        f"up: demo data for {dag_id} is uploaded; unpause {dag_id}: its upload starts a run "
                        "(S3 → EventBridge → SQS → Asset)"
                    )
                elif conf:
                    say(f"up: demo data for {dag_id} is uploaded; trigger it with conf {json.dumps(conf)}")
            for dag_id in skipped:
                say(
                    f"up: demo data for {dag_id} is NOT uploaded: schedules are off, so the run its upload "
                    "starts would never be created (the Asset watcher would only consume the upload); "
                    "`make up` without SCHEDULES=0 uploads it"
                )
            say(
                f"up: the trigger forms default to these confs ({_shown(defaults)}, read within 30 s): "
                "the Trigger button alone runs each pipeline"
            )
            if found.import_errors:
                say(f"up: import errors in {', '.join(found.import_errors)} (see the UI)")
            if schedules:
                say(f"up: Asset triggers are on (the DAGs have no time schedule). {stop_how}")
            else:
                say(
                    "up: schedules and Asset triggers are off (--schedules turns them on): trigger DAGs from "
                    f"the UI. {stop_how}"
                )
            watched = {d: True for d in by_upload} if schedules else {}  # dag_id → paused, as last seen
            ticks = 0
            while True:
                dead = stack.dead_children()
                if dead:
                    stack._check_alive(dead[0])
                if watched and ticks % 5 == 0:
                    reparse_when_unpaused(stack, watched)
                ticks += 1
                time.sleep(1)
        except (KeyboardInterrupt, Interrupted):
            say("")
            say("up: stopping")
            return 0
        finally:
            stack.stop()


def reparse_for_defaults(stack: Stack, found) -> None:
    """The trigger forms read the demo defaults when a DAG file is parsed; a file that did not change is
    parsed again only after min_file_process_interval (5 min here): ask for a parse of each DAG now,
    once the dag-processor has stored it."""
    from local_aws.stack.demo import request_reparse, wait_until_parsed

    unloaded = wait_until_parsed(stack, found, list(found.dags), timeout_s=300)
    for dag_id in found.dags:
        if dag_id not in unloaded:
            with contextlib.suppress(StackError):
                request_reparse(stack, dag_id)


def reparse_when_unpaused(stack: Stack, watched: dict[str, bool]) -> None:
    """A DAG started by its upload registers its Asset watcher on a parse while unpaused: when one is
    unpaused in the UI, ask for that parse now, not after min_file_process_interval (5 min here)."""
    from local_aws.stack.demo import request_reparse

    for dag_id, was_paused in watched.items():
        with contextlib.suppress(StackError):
            paused = bool(stack.api("GET", f"/dags/{dag_id}").get("is_paused"))
            if was_paused and not paused:
                request_reparse(stack, dag_id)
            watched[dag_id] = paused


# ------------------------------------------------------------------------------- in the background


def pid_file(home: Path) -> Path:
    return home / "up.pid"


def up_log(home: Path) -> Path:
    return home / "logs" / "stack" / "up.log"


def running_pid(home: Path) -> int | None:
    """The pid of the background `make up` of this Airflow home, if it still runs (checked by its command
    line, so a pid reused by another process is never signalled)."""
    path = pid_file(home)
    try:
        pid = int(path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if b"local_aws" in cmdline and b"up" in cmdline:
        return pid
    return None


def start_detached(argv: Sequence[str], *, timeout_s: float = 900, say=print) -> int:
    """Start `python -m local_aws up <argv>` in its own session; echo its output until it is ready."""
    home = airflow_home()
    pid = running_pid(home)
    if pid is not None:
        raise StackError(
            f"up: the stack already runs in the background (pid {pid}, {_shown(pid_file(home))}): "
            "`make logs` follows it, `make stop` stops it, `make restart` restarts it"
        )
    log_path = up_log(home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_aws", "up", "--background-child", *argv],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this process and the terminal; `make stop` ends it
        )
    pid_file(home).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout_s
    shown = 0
    with open(log_path, errors="replace") as log:
        while True:
            for line in log:
                say(line.rstrip("\n"))
                shown += 1
                if line.rstrip().endswith(READY):
                    say(
                        f"up: running in the background (pid {process.pid}; its output: {_shown(log_path)}). "
                        "make logs | make stop | make restart"
                    )
                    return 0
            if process.poll() is not None:
                pid_file(home).unlink(missing_ok=True)
                say(
                    f"up: the stack exited with status {process.returncode} before it was ready "
                    f"(log: {_shown(log_path)})"
                )
                return process.returncode or 1
            if time.monotonic() > deadline:
                stop_detached(say=say)
                raise StackError(
                    f"up: the stack was not ready after {timeout_s:.0f} s; log: {_shown(log_path)}"
                )
            time.sleep(0.5)


def stop_detached(grace_s: float = 90, say=print) -> int:
    """`make stop`: SIGTERM to the background stack (it stops its children in order), SIGKILL to its
    session if it has not exited after `grace_s`."""
    home = airflow_home()
    pid = running_pid(home)
    if pid is None:
        pid_file(home).unlink(missing_ok=True)
        say(f"stop: no stack runs in the background (no live pid in {_shown(pid_file(home))})")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while running_pid(home) == pid and time.monotonic() < deadline:
        time.sleep(0.5)
    if running_pid(home) == pid:
        say(f"stop: pid {pid} still runs after {grace_s:.0f} s; killing its session")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    pid_file(home).unlink(missing_ok=True)
    say(f"stop: stopped the stack (pid {pid})")
    return 0


def follow_logs(lines: int = 40) -> int:
    """`make logs`: follow the background stack's output and its processes' logs (Ctrl-C ends)."""
    folder = up_log(airflow_home()).parent
    logs = sorted(str(p) for p in folder.glob("*.log")) if folder.is_dir() else []
    if not logs:
        raise StackError(f"logs: no stack logs in {_shown(folder)}/ yet: start the stack with `make up`")
    os.execvp("tail", ["tail", "-n", str(lines), "-F", *logs])
    return 0  # not reached
