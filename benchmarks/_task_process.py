"""Running one task's callable in a process of its own, for the per-task benchmarks
(`*_task_time.py`): the parent writes the call's arguments to a file and starts the benchmark script again
with `--child TASK_ID FILE` in the checkout measured; the child times the callable (or profiles it) and prints
its figures as the last line of its output."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class TaskInstanceStandIn:
    """What a report task's callable uses of its `ti`: `xcom_push`, kept."""

    def __init__(self, *_: Any):
        self.pushed: dict = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class _OutletEvent:
    extra: dict | None = None


class OutletEventsStandIn(dict):
    """A task's `outlet_events`: an event per Asset, made when first asked for."""

    def __missing__(self, asset: Any) -> _OutletEvent:
        self[asset] = _OutletEvent()
        return self[asset]


def arguments(description: str, rounds: int) -> argparse.ArgumentParser:
    """The options every per-task benchmark takes; a script adds its own."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", "--runs", dest="rounds", type=int, default=rounds)
    parser.add_argument("--before", type=Path, help="another checkout whose tasks run alternately")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    return parser


def preloaded_dag(dag_id: str) -> Any:
    """In the child, untimed: what the scheduler's forkserver preloads (TASK_PRELOAD_MODULES), then the DAG
    file of the checkout measured parsed, as a worker does before the task's callable."""
    import importlib

    from local_aws.stack.environment import TASK_PRELOAD_MODULES
    from tests.dag_files import load_dag

    for module in TASK_PRELOAD_MODULES:
        importlib.import_module(module)
    return load_dag(Path.cwd() / "dags" / f"{dag_id}.py")


def timed_call(callable_: Callable, args: list, kwargs: dict, profile: bool) -> tuple[float, Any]:
    """(seconds, result) of one call; with `profile`, its cProfile top functions go to stderr."""
    if not profile:
        started = time.perf_counter()
        result = callable_(*args, **kwargs)
        return time.perf_counter() - started, result
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    result = profiler.runcall(callable_, *args, **kwargs)
    seconds = time.perf_counter() - started
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    return seconds, result


def run_child(script: str, checkout: Path, task_id: str, call: dict, env: dict, profile: bool) -> dict:
    """Run `script --child task_id <file of call>` in `checkout` (its code on PYTHONPATH) and return the JSON
    the child printed last; its profile, with `profile`, is printed here."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(call, handle)
    env = {**env, "PYTHONPATH": f"{checkout}{os.pathsep}{checkout / 'plugins'}"}
    try:
        out = subprocess.run(
            [sys.executable, str(Path(script).resolve()), "--child", task_id, handle.name]
            + (["--profile"] if profile else []),
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(handle.name)
    if out.returncode:
        raise RuntimeError(f"{checkout.name} {task_id} failed:\n{out.stderr[-4000:]}")
    if profile:
        print(f"==== {checkout.name} {task_id}\n{out.stderr[-12000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(
    tasks: list[str] | tuple[str, ...],
    checkouts: dict[str, Path],
    seconds: dict[tuple[str, str], list[float]],
    extra: tuple[str, Callable[[str], str]] | None = None,
) -> None:
    """The per-task table: median seconds per checkout, the median of the per-round after/before ratios
    (with a "before" checkout), an `extra` (heading, task_id → cell) column; then the raw seconds as JSON."""
    width = max(24, *(len(task) + 2 for task in tasks))
    heading = f"{'task':<{width}}" + "".join(f"{label + ' s':>12}" for label in checkouts)
    print(heading + ("  after/before" * ("before" in checkouts)) + (f"  {extra[0]}" if extra else ""))
    for task_id in tasks:
        row = f"{task_id:<{width}}" + "".join(
            f"{statistics.median(seconds[(label, task_id)]):12.2f}" for label in checkouts
        )
        if "before" in checkouts:
            ratios = [a / b for a, b in zip(seconds[("after", task_id)], seconds[("before", task_id)])]
            row += f"  {statistics.median(ratios):12.2f}"
        print(row + (f"  {extra[1](task_id)}" if extra else ""))
    print(json.dumps({f"{label}/{task}": values for (label, task), values in seconds.items()}))
