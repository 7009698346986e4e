"""`make demo`: run every DAG (or those asked for) once on the local stack with its demo data, report."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_aws import DEFAULT_PORT
from local_aws.stack.dags import DagFolder, list_dags, select_dags
from local_aws.stack.environment import (
    DEFAULT_API_PORT,
    _shown,
    airflow_env,
    airflow_home,
    dags_folder,
    param_defaults_path,
    write_param_defaults,
)
from local_aws.stack.errors import Interrupted, StackError
from local_aws.stack.ports import attach_requested, claim_stack_ports
from local_aws.stack.processes import Stack, _signals_as_interrupts

DEFAULT_DEMO_TIMEOUT_S = 3600
TERMINAL_STATES = {"success", "failed"}


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
            lines.append(
                "  ".join("-" * w for w in widths) + "  " + "-" * max(6, max(len(r[3]) for r in rows))
            )
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
        result.duration_s = ((end or dt.datetime.now(dt.UTC)) - start).total_seconds()
    quoted = urllib.parse.quote(run_id, safe="")
    with contextlib.suppress(StackError):
        entries = stack.api(
            "GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/~/xcomEntries?xcom_key=report_uri"
        )
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
                ti["task_id"]
                for ti in tis.get("task_instances", [])
                if ti.get("state") in ("failed", "upstream_failed")
            )
    return result


def wait_until_parsed(
    stack: Stack, found: DagFolder, dag_ids: Sequence[str], timeout_s: float
) -> dict[str, str]:
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
    run_id = f"demo__{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
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
    """DAGs whose demo upload itself starts their run (S3 upload → EventBridge → SQS → Asset watcher):
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


def celery_spread(stack: Stack) -> str:
    """Which Celery worker ran which tasks, from each worker's log ("Executing workload in Celery")."""
    lines = []
    for child in stack.children:
        if not child.name.startswith("celery-worker"):
            continue
        text = child.log_path.read_text(errors="replace") if child.log_path.exists() else ""
        tasks = celery_workloads(text)
        lines.append(f"demo: {child.name} ran {len(tasks)} task(s): {', '.join(tasks) or '-'}")
    return "\n".join(lines)


def celery_workloads(log_text: str) -> list[str]:
    """`dag_id.task_id` of each "Executing workload in Celery" line of a Celery worker's log."""
    import re

    found = []
    for line in log_text.splitlines():
        if "Executing workload in Celery" not in line:
            continue
        task = re.search(r"\btask_id='([^']+)'", line)
        dag = re.search(r"\bdag_id='([^']+)'", line)
        found.append(f"{dag[1] if dag else '?'}.{task[1] if task else '?'}")
    return found


def upload_runs_take_the_demo_conf(db_path: Path, confs: dict[str, dict], by_upload: Sequence[str]) -> None:
    """A run its upload starts has no conf: it takes the DAG's form defaults. Make them the demo's conf
    (its 2 s polls of the sandbox's jobs, not the form's 30 s for AWS) as `make up` does, for the parse
    `await_upload_runs` asks for once it unpauses the DAG (orchard.params.with_defaults reads the file)."""
    write_param_defaults(db_path, {dag_id: confs[dag_id] for dag_id in by_upload if confs.get(dag_id)})


def request_reparse(stack: Stack, dag_id: str) -> None:
    """Ask the dag-processor to parse `dag_id`'s file now (PUT /api/v2/parseDagFile/{file_token}), not after
    `min_file_process_interval`: the Asset watcher of a DAG is registered by a parse of it while unpaused."""
    token = stack.api("GET", f"/dags/{dag_id}/details").get("file_token")
    if token:
        stack.api("PUT", f"/parseDagFile/{token}")


def await_upload_runs(
    stack: Stack, dag_ids: Sequence[str], timeout_s: float, poll_s: float = 2.0, say=print
) -> dict[str, RunResult]:
    """Unpause each DAG and wait for the asset-triggered run its demo upload starts (the dag-processor
    registers the Asset watcher on a parse of the unpaused DAG, requested at once; the triggerer then reads
    the queue)."""
    results = {}
    for dag_id in dag_ids:
        stack.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        request_reparse(stack, dag_id)
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
    attach_sandbox: bool | None = None,
    celery_workers: int = 0,
    on_started: Callable[[Stack], None] | None = None,
    before_stop: Callable[[Stack, dict[str, RunResult]], None] | None = None,
    say=print,
) -> int:
    """`make demo`: run every DAG (or `requested`) once on the local stack; 0 only if every run succeeded.

    Its last line is always `summary_line(...)` once the DAGs to run are known. `on_started(stack)` runs
    once the stack is up and `before_stop(stack, results)` after the runs, before the stack stops
    (benchmarks/airflow_overhead.py samples the runs and reads the sandbox's jobs there).
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
            f'fix them, or run only the DAGs that load: make demo DAGS="{" ".join(dag_ids)}"'
        )

    say(f"demo: {len(dag_ids)} DAG(s): {', '.join(dag_ids)}")
    results = {d: RunResult(d) for d in dag_ids}
    by_upload = triggered_by_upload(dag_ids)
    attach = attach_sandbox if attach_sandbox is not None else attach_requested()
    sandbox_port, api_port = claim_stack_ports("demo", sandbox_port, api_port, attach=attach)
    stack = Stack(
        home=home,
        dags=folder,
        sandbox_port=sandbox_port,
        api_port=api_port,
        attach_sandbox=attach,
        celery_workers=celery_workers,
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
                param_defaults_path(stack.db_path).unlink(missing_ok=True)  # a previous demo's
                stack.start()
                if on_started:
                    on_started(stack)
                no_data: dict[str, str] = {}
                confs = stack.seed(dag_ids, failures=no_data)
                upload_runs_take_the_demo_conf(stack.db_path, confs, by_upload)
                with_data = ", ".join(d for d in dag_ids if confs.get(d)) or "no DAG"
                say(f"demo: demo data uploaded for {with_data}")
                for dag_id, why in no_data.items():
                    results[dag_id].state = "demo data failed"
                    say(
                        f"demo: the demo data of {dag_id} failed to upload:\n    "
                        + why.strip().replace("\n", "\n    ")
                    )
                to_run = [d for d in dag_ids if d not in no_data]
                unloaded = wait_until_parsed(stack, found, to_run, timeout_s=min(300.0, timeout_s))
                for dag_id, why in unloaded.items():
                    results[dag_id].state = "import error"
                    say(f"demo: Airflow could not load {dag_id}:\n    " + why[-1500:].replace("\n", "\n    "))
                loaded = [d for d in to_run if d not in unloaded]
                results.update(trigger(stack, [d for d in loaded if d not in by_upload], confs, say))
                results.update(
                    await_upload_runs(stack, [d for d in loaded if d in by_upload], 300.0, say=say)
                )
                wait_for_runs(stack, results, started + timeout_s, poll_s, say)
            except StackError as err:
                say(str(err))
            except (KeyboardInterrupt, Interrupted) as err:
                interrupted = True
                for r in results.values():
                    if r.state not in TERMINAL_STATES:
                        r.state = f"interrupted ({r.state})"
                say(
                    f"demo: interrupted ({'Ctrl-C' if isinstance(err, KeyboardInterrupt) else err}) — "
                    "stopping; "
                    "Ctrl-C again kills at once"
                )
            except Exception:  # a pipeline's demo data, an API answer we did not expect: report, then stop
                say(f"demo: failed\n{traceback.format_exc()}")
            finally:
                say("")
                say(format_table([results[d] for d in dag_ids]))
                for r in results.values():
                    if r.failed_tasks:
                        say(
                            f"  {r.dag_id}: failed task(s) {', '.join(r.failed_tasks)} — logs in "
                            f"{_shown(home / 'logs' / f'dag_id={r.dag_id}' / f'run_id={r.run_id}')}/"
                        )
                say("")
                if celery_workers:
                    say(celery_spread(stack))
                if before_stop:
                    try:
                        before_stop(stack, results)
                    except Exception:  # a benchmark's reading must never leave the stack running
                        say(f"demo: before_stop failed\n{traceback.format_exc()}")
                stack.stop()
    finally:
        succeeded = sum(r.succeeded for r in results.values())
        say(summary_line(succeeded, len(results), time.monotonic() - started))
    if interrupted:
        return 130
    return 0 if succeeded == len(results) else 1
