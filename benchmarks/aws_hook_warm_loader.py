"""A task's first Amazon-provider hook, in a process forked from a forkserver that warmed orchard's shared
botocore loader (orchard.aws_preload) and froze its objects (orchard.preload_freeze) vs one that did not:
the seconds and the botocore JSON files the hook parses, the child's own memory, its first full garbage
collection, and the forkserver's memory.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/aws_hook_warm_loader.py [--rounds 5] [--children 3]

Arms: "cold", the forkserver preloads the local stack's TASK_PRELOAD_MODULES without both orchard modules
(main before them); "warm", with orchard.aws_preload; "frozen", with both (the stack's list). Each round
starts, for each arm in turn (the order rotates), a parent process that starts a multiprocessing forkserver
with that preload, as the scheduler does for its LocalExecutor workers, then forks `--children` processes
from it one after another. Each times its first hook on `aws_default` (a connection with the local stack's
`role_arn`: AssumeRole) with orchard's session factory: AwsBaseHook → get_session() → a SageMaker and an S3
client, against a sandbox of its own; then reads its private memory (smaps_rollup Private_*), times one
gc.collect() (a task's first full collection) and reads it again. Figures: medians over all children of an
arm, and the median of the per-round ratios to "cold" of the children's medians. Each round also times, in
a fresh process that imported the provider first, `import orchard.aws_preload`: what the warm-up adds to
the forkserver's start.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins"):
    sys.path.insert(0, str(path))

from _forkserver import forked_reports, forkserver_rss_kib  # noqa: E402

FACTORY = "orchard.aws_session.SharedLoaderSessionFactory"
WARM_MODULE = "orchard.aws_preload"
FREEZE_MODULE = "orchard.preload_freeze"
SERVICES = ("sagemaker", "s3")
LEFT_OUT = {"cold": {WARM_MODULE, FREEZE_MODULE}, "warm": {FREEZE_MODULE}, "frozen": set()}
ARMS = tuple(LEFT_OUT)
FIGURES = {  # what a child reports: its label and unit
    "seconds": ("first hook", "s"),
    "parsed": ("JSON files parsed", ""),
    "private_mib": ("private memory after it", "MiB"),
    "gc_seconds": ("then a full gc.collect()", "s"),
    "private_after_gc_mib": ("private memory after that", "MiB"),
}


def first_hook(results) -> None:
    """In a forked child: the seconds of its first hook → session → SERVICES' clients, and the JSON files
    botocore's loader parsed meanwhile."""
    import airflow.providers.amazon.aws.hooks.base_aws  # noqa: F401  (the provider first, untimed)
    from _hook_clients import hook_session_clients
    from botocore.loaders import JSONFileLoader

    parsed: list[str] = []
    load_file = JSONFileLoader.load_file

    def counting_load_file(self, file_path):
        data = load_file(self, file_path)
        if data is not None:
            parsed.append(os.path.basename(os.path.dirname(file_path)) + "/" + os.path.basename(file_path))
        return data

    JSONFileLoader.load_file = counting_load_file
    started = time.perf_counter()
    hook_session_clients(SERVICES)
    took = time.perf_counter() - started
    private = private_mib()
    started = time.perf_counter()
    gc.collect()
    gc_seconds = time.perf_counter() - started
    results.put(
        {
            "seconds": took,
            "parsed": len(parsed),
            "files": parsed,
            "private_mib": private,
            "gc_seconds": gc_seconds,
            "private_after_gc_mib": private_mib(),
        }
    )


def private_mib() -> float:
    """This process's pages that no other process shares (copied on write, or its own)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024


def parent(arm: str, children: int) -> dict:
    """A scheduler's stand-in: its forkserver preloads the stack's modules, then `children` forks."""
    from local_aws.stack.environment import TASK_PRELOAD_MODULES

    preload = [m for m in TASK_PRELOAD_MODULES if m not in LEFT_OUT[arm]]
    multiprocessing.set_start_method("forkserver")
    multiprocessing.set_forkserver_preload(preload)
    reports = forked_reports(first_hook, children)
    figures = {name: [r[name] for r in reports] for name in FIGURES}
    return {**figures, "files": reports[0]["files"], "rss_kib": forkserver_rss_kib()}


def time_warm_up() -> float:
    import airflow.providers.amazon.aws.hooks.base_aws  # noqa: F401  (the forkserver imported it before)

    started = time.perf_counter()
    importlib.import_module(WARM_MODULE)
    return time.perf_counter() - started


def run_parent(arm: str, children: int, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--parent", arm, "--children", str(children)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--parent", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--warm-up", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parent:
        print(json.dumps(parent(args.parent, args.children)))
        return
    if args.warm_up:
        print(time_warm_up())
        return

    from _bench_sandbox import start_sandbox
    from aws_hook_session_time import create_role

    from local_aws import aws_connection

    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    sandbox, url = start_sandbox(0)
    try:
        env = {
            **os.environ,
            "AIRFLOW_HOME": tempfile.mkdtemp(prefix="orchard-warm-bench-"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__AWS__SESSION_FACTORY": FACTORY,
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(url, role_arn=create_role()),
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        }
        rounds: list[dict[str, dict]] = []
        for round_ in range(args.rounds):
            order = ARMS[round_ % len(ARMS) :] + ARMS[: round_ % len(ARMS)]
            rounds.append({arm: run_parent(arm, args.children, env) for arm in order})
            warm_up = [sys.executable, __file__, "--warm-up"]
            out = subprocess.run(warm_up, env=env, check=True, capture_output=True, text=True).stdout
            rounds[-1]["warm_up_seconds"] = float(out.strip().splitlines()[-1])
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{a} {statistics.median(rounds[-1][a]['seconds']):.3f} s" for a in ARMS),
                flush=True,
            )
    finally:
        sandbox.terminate()
        sandbox.wait()
    summarize(rounds, args.children)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def summarize(rounds: list[dict[str, dict]], children: int) -> None:
    what = f"first hook → session (AssumeRole) → {' + '.join(SERVICES)} clients"
    print(f"{what}; {len(rounds)} rounds × {children} forked children each; medians over the children:")
    for arm in ARMS:
        rss = statistics.median(r[arm]["rss_kib"] for r in rounds) / 1024
        figures = "; ".join(
            f"{label} {statistics.median(v for r in rounds for v in r[arm][name]):.3g} {unit}".rstrip()
            for name, (label, unit) in FIGURES.items()
        )
        print(f"  {arm}: {figures}; forkserver RSS {rss:.0f} MiB")
        print(f"    files a child parsed: {', '.join(rounds[0][arm]['files']) or 'none'}")
    for arm in ARMS[1:]:
        ratios = {
            label: statistics.median(ratio(r, arm, name) for r in rounds)
            for name, (label, _) in FIGURES.items()
            if name != "parsed"
        }
        ratios["forkserver RSS"] = statistics.median(r[arm]["rss_kib"] / r["cold"]["rss_kib"] for r in rounds)
        print(
            f"  {arm} / cold, median of the per-round ratios: "
            + "; ".join(f"{k} {v:.3g}" for k, v in ratios.items())
        )

    warm_up = statistics.median(r["warm_up_seconds"] for r in rounds)
    print(f"  the warm-up (import {WARM_MODULE}), median: {warm_up:.2f} s")


def ratio(round_: dict[str, dict], arm: str, name: str) -> float:
    return statistics.median(round_[arm][name]) / statistics.median(round_["cold"][name])


if __name__ == "__main__":
    main()
