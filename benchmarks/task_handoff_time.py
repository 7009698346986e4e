"""Seconds between one task's end and the next task's code on the local stack, split by who spends them.

    .venv/bin/python benchmarks/task_handoff_time.py [--tasks 10] [--rounds 3] [--load 2]
        [--host edge_deployment.py | --host none]
        [--variant NAME:SECTION__KEY=VALUE[,SECTION__KEY=VALUE...] ...] [--json out.json]
    .venv/bin/python benchmarks/task_handoff_time.py --summarize out.json

Runs a DAG of --tasks sequential trivial tasks (`handoff_chain`) on a stack started as `make demo` starts it
(local_aws.stack.processes.Stack: the sandbox, scheduler, dag-processor, triggerer, api-server with
local_aws/stack/environment.py's settings), in a scratch Airflow home whose dags folder holds copies of the
orchard DAG files. The chain is appended to the copy of --host (default edge_deployment.py), so each of its
tasks parses what an edge_deployment task parses; `--host none` puts it in a file of its own (Airflow's
floor). Each run starts once the dag-processor has stored every DAG, so no first parse competes.

Per handoff (task i-1 → task i), from the REST API's task instances and task i's log (JSON lines):

* end → queued: the upstream's end_date → the downstream's queued_when (the scheduler's loop);
* queued → start: queued_when → start_date (the LocalExecutor's worker, the fork, the supervisor's
  `run` call to the execution API, which sets start_date);
* start → log: start_date → the task process's first log line (its startup message);
* parse: "Filling up the DagBag" → "Worker startup parse complete" (the task parsing its DAG file);
* log → code: the first log line → the task's own first line (a log record), parse included;
* end → code: the upstream's end_date → the task's own first line: the whole handoff;
* code → end: the task's first line → its end_date (the task's own work is nothing: finishing).

And the scheduler's CPU seconds per minute while the chain ran and while the stack sat idle (--idle-s after
the run; /proc/<pid>/stat utime + stime of the scheduler process, not its workers).

Each --variant is the stack's environment plus its overrides (AIRFLOW__SECTION__KEY=VALUE, the prefix
added); "stack" (no overrides) is always run. Variants alternate within each round, each round starting
with the next (the machine's load drifts); the table gives the median over rounds of each round's median over its handoffs, and the ratio to
"stack". `--load N` runs N CPU-bound processes (benchmarks/_cpu_load.py) throughout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from local_aws.stack import processes  # noqa: E402
from local_aws.stack.errors import StackError  # noqa: E402
from local_aws.stack.ports import pick_port  # noqa: E402

CHAIN_DAG_ID = "handoff_chain"
CODE_MARK = "handoff: task code starts"
FILLING, PARSED = "Filling up the DagBag", "Worker startup parse complete"
PHASES = ("end → queued", "queued → start", "start → log", "parse", "log → code", "end → code", "code → end")

CHAIN_SOURCE = """

# ---- appended by benchmarks/task_handoff_time.py: {tasks} sequential trivial tasks
import logging as _handoff_logging

from airflow.sdk import dag as _handoff_dag, task as _handoff_task


@_handoff_dag(dag_id="{dag_id}", schedule=None, tags=["benchmark"])
def _handoff_chain():
    @_handoff_task
    def step():
        # a log record carries the task process's own clock (a print's line is stamped when read)
        _handoff_logging.getLogger("airflow.task").info("{mark}")

    previous = None
    for index in range({tasks}):
        current = step.override(task_id=f"step_{{index:02d}}")()
        if previous is not None:
            previous >> current
        previous = current


_handoff_chain()
"""


def utc(text: str | None) -> float | None:
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def make_dags_folder(target: Path, host: str, tasks: int) -> Path:
    """Copies of the orchard DAG files, the chain appended to the host's copy (or in a file of its own)."""
    target.mkdir(parents=True)
    for path in sorted((REPO / "dags").glob("*.py")):
        shutil.copy(path, target / path.name)
    chain = CHAIN_SOURCE.format(tasks=tasks, dag_id=CHAIN_DAG_ID, mark=CODE_MARK)
    if host == "none":
        (target / f"{CHAIN_DAG_ID}.py").write_text(f'"""Airflow DAG {CHAIN_DAG_ID}."""\n{chain}')
    else:
        with open(target / host, "a") as host_file:
            host_file.write(chain)
    return target


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_marks(path: Path) -> dict[str, float]:
    """When the task process logged its first line, started and finished parsing, and ran its code."""
    marks: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        moment, event = utc(record.get("timestamp")), str(record.get("event", ""))
        if moment is None:
            continue
        marks.setdefault("first", moment)
        for name, text in (("filling", FILLING), ("parsed", PARSED), ("code", CODE_MARK)):
            if event.startswith(text):
                marks.setdefault(name, moment)
    return marks


def handoffs(tis: list[dict], log_dir: Path) -> list[dict[str, float]]:
    """One row per handoff of the chain: each phase's seconds."""
    ordered = sorted(tis, key=lambda ti: ti["task_id"])
    rows = []
    for upstream, ti in zip(ordered, ordered[1:]):
        marks = log_marks(log_dir / f"task_id={ti['task_id']}" / f"attempt={ti.get('try_number') or 1}.log")
        up_end, queued, start, end = (
            utc(upstream["end_date"]),
            utc(ti["queued_when"]),
            utc(ti["start_date"]),
            utc(ti["end_date"]),
        )
        if None in (up_end, queued, start, end) or not {"first", "code"} <= marks.keys():
            continue
        rows.append(
            {
                "end → queued": queued - up_end,
                "queued → start": start - queued,
                "start → log": marks["first"] - start,
                "parse": marks.get("parsed", marks["code"]) - marks.get("filling", marks["first"]),
                "log → code": marks["code"] - marks["first"],
                "end → code": marks["code"] - up_end,
                "code → end": end - marks["code"],
            }
        )
    return rows


class HandoffStack(processes.Stack):
    """The stack with a variant's settings on top of local_aws/stack/environment.py's."""

    def __init__(self, overrides: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.overrides = overrides

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.overrides}


def wait_for(check, timeout_s: float, what: str, stack: processes.Stack, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        for child in stack.children:
            stack._check_alive(child)
        with contextlib.suppress(StackError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not after {timeout_s:.0f} s")
        time.sleep(poll_s)


def all_parsed(stack: processes.Stack, files: int) -> bool:
    """Every DAG file stored or reported (the dag-processor's first pass is over)."""
    dags = stack.api("GET", "/dags?limit=100&paused=true").get("total_entries", 0)
    dags += stack.api("GET", "/dags?limit=100&paused=false").get("total_entries", 0)
    errors = stack.api("GET", "/importErrors?limit=100").get("total_entries", 0)
    return dags + errors >= files


def one_run(name: str, overrides: dict[str, str], dags: Path, home: Path, idle_s: float) -> dict:
    stack = HandoffStack(
        overrides,
        home=home,
        dags=dags,
        sandbox_port=pick_port(0),
        api_port=pick_port(0),
        fresh_db=True,
        say=lambda *_: None,
    )
    with stack:
        stack.start()
        wait_for(lambda: all_parsed(stack, len(list(dags.glob("*.py")))), 600, "DAGs parsed", stack, 1)
        stack.api("PATCH", f"/dags/{CHAIN_DAG_ID}", {"is_paused": False})
        scheduler = next(c for c in stack.children if c.name == "scheduler").process.pid
        run_id = f"handoff__{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
        cpu0, t0 = cpu_seconds(scheduler), time.monotonic()
        stack.api("POST", f"/dags/{CHAIN_DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
        path = f"/dags/{CHAIN_DAG_ID}/dagRuns/{quote(run_id, safe='')}"
        state = wait_for(
            lambda: (s := stack.api("GET", path)["state"]) in ("success", "failed") and s, 900, "run", stack
        )
        cpu1, t1 = cpu_seconds(scheduler), time.monotonic()
        time.sleep(idle_s)
        cpu2, t2 = cpu_seconds(scheduler), time.monotonic()
        tis = stack.api("GET", f"{path}/taskInstances?limit=1000")["task_instances"]
        log_dir = home / "logs" / f"dag_id={CHAIN_DAG_ID}" / f"run_id={run_id}"
        rows = handoffs(tis, log_dir)
    return {
        "variant": name,
        "state": state,
        "run_s": t1 - t0,
        "scheduler_cpu_s_per_min_running": 60 * (cpu1 - cpu0) / (t1 - t0),
        "scheduler_cpu_s_per_min_idle": 60 * (cpu2 - cpu1) / (t2 - t1) if t2 > t1 else None,
        "handoffs": rows,
    }


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        overrides[f"AIRFLOW__{key.strip().upper()}"] = value.strip()
    return name, overrides


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def summary(runs: list[dict], names: list[str]) -> str:
    columns = [*PHASES, "run s", "sched CPU/min", "idle CPU/min"]
    per_variant = {}
    for name in names:
        mine = [r for r in runs if r["variant"] == name and r["handoffs"]]
        cells = [median(median(h[p] for h in r["handoffs"]) for r in mine) for p in PHASES]
        cells += [
            median(r["run_s"] for r in mine),
            median(r["scheduler_cpu_s_per_min_running"] for r in mine),
            median(r["scheduler_cpu_s_per_min_idle"] for r in mine),
        ]
        per_variant[name] = cells
    width = max(len(n) for n in names) + 2
    lines = [f"{'median s (per handoff)':{width + 10}}" + "".join(f"{c:>15}" for c in columns)]
    for name in names:
        lines.append(f"{name:{width + 10}}" + "".join(f"{v:15.2f}" for v in per_variant[name]))
        if name != "stack":
            # a ratio of two near-zero phases (code → end) says nothing: shown as "-"
            ratios = [a / b if b >= 0.05 else None for a, b in zip(per_variant[name], per_variant["stack"])]
            lines.append(
                f"{'  / stack':{width + 10}}"
                + "".join(f"{v:15.2f}" if v is not None else f"{'-':>15}" for v in ratios)
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes running alongside")
    parser.add_argument("--host", default="edge_deployment.py", help="DAG file the chain joins, or none")
    parser.add_argument("--variant", action="append", default=[], help="NAME:SECTION__KEY=VALUE,...")
    parser.add_argument("--idle-s", type=float, default=20, help="idle seconds after each run (CPU)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--summarize", type=Path, help="only print the table of an earlier --json")
    args = parser.parse_args()
    if args.summarize:
        saved = json.loads(args.summarize.read_text())
        print(summary(saved["runs"], list(saved["variants"])))
        return 0
    variants = dict([("stack", {}), *(parse_variant(v) for v in args.variant)])
    print(f"variants: {variants}")
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores; --load {args.load}")
    load = [
        subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "_cpu_load.py"), "--seconds", "7200"])
        for _ in range(args.load)
    ]
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="handoff-") as tmp:
            dags = make_dags_folder(Path(tmp) / "dags", args.host, args.tasks)
            names = list(variants)
            for round_no in range(args.rounds):
                # each round starts with another variant: the first run after a pause finds colder caches
                for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                    overrides = variants[name]
                    home = Path(tmp) / f"home-{name}-{round_no}"
                    run = one_run(name, overrides, dags, home, args.idle_s)
                    runs.append(run)
                    if args.json:  # after each run: a run cut short keeps what it measured
                        args.json.write_text(
                            json.dumps({"variants": variants, "load": args.load, "runs": runs})
                        )
                    print(
                        f"round {round_no} {name}: {run['state']}, {len(run['handoffs'])} handoffs, "
                        f"end → code median {median(h['end → code'] for h in run['handoffs']):.2f} s, "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        for process in load:
            process.terminate()
            process.wait(timeout=10)
    print(f"load average at end: {os.getloadavg()}")
    print(summary(runs, list(variants)))
    return 0 if all(r["state"] == "success" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
