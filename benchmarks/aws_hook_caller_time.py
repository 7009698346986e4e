"""A task's first Amazon-provider clients, in processes forked from a forkserver that filled inspect's file →
module map (orchard.caller_preload) vs one that did not: the seconds of each client and of the provider's
user-agent stack walk in it (`AwsGenericHook._get_caller`), the modules that walk maps, and the forkserver's
memory.

    .venv/bin/python benchmarks/aws_hook_caller_time.py [--rounds 5] [--children 3] [--dag auto_labeling]

Arms: "without", the forkserver preloads the local stack's TASK_PRELOAD_MODULES less orchard.caller_preload
(main before it); "with", the stack's list. Each round starts, for each arm in turn (the order alternates), a
parent process with the stack's environment that starts a multiprocessing forkserver as the scheduler does
(`set_component_mp_start_method("scheduler")`), then forks `--children` processes from it one after another.
Each child parses the DAG file as a task process does (its modules are imported after the fork), then, in an
operator's `execute`, makes a SageMaker client and then an S3 client, each through its own AwsBaseHook's
`conn` (`aws_conn_id=None`, the environment's keys: no AWS call), timing each and the `_get_caller` inside
it. Figures: medians over all children of an arm, and the median of the per-round ratios with / without of
the children's medians; the forkserver's VmRSS; in "with", the size of the inherited map (its dicts and
key strings); in "without", one full map of the child's modules timed after the rest (what the warm-up does
once in the forkserver).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins", REPO / "benchmarks"):  # benchmarks/: PYTHONSAFEPATH in its parent
    sys.path.insert(0, str(path))

from _forkserver import forked_reports, forkserver_rss_kib  # noqa: E402

WARM_MODULE = "orchard.caller_preload"
ARMS = ("without", "with")
SERVICES = ("sagemaker", "s3")
FIGURES = {  # what a child reports: its label and unit
    "first_client": ("first client", "s"),
    "first_caller": ("its _get_caller", "s"),
    "second_client": ("second client", "s"),
    "second_caller": ("its _get_caller", "s"),
    "newly_mapped": ("modules the walks mapped", ""),
}


class BenchOperator:
    """A task's operator: its `execute` is on the stack, as the provider's walk looks for it."""

    def execute(self, results) -> None:
        import inspect

        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook, AwsGenericHook

        callers: list[tuple[str, float]] = []
        get_caller = AwsGenericHook._get_caller

        def timed_get_caller(hook, *args, **kwargs):
            started = time.perf_counter()
            caller = get_caller(hook, *args, **kwargs)
            callers.append((caller, time.perf_counter() - started))
            return caller

        AwsGenericHook._get_caller = timed_get_caller  # the benchmark's timer, in this forked child only
        mapped = set(inspect.modulesbyfile.values())
        seconds = []
        for service in SERVICES:
            started = time.perf_counter()
            AwsBaseHook(aws_conn_id=None, client_type=service).conn
            seconds.append(time.perf_counter() - started)
        report = {
            "first_client": seconds[0],
            "first_caller": callers[0][1],
            "second_client": seconds[1],
            "second_caller": callers[1][1],
            "newly_mapped": len(set(inspect.modulesbyfile.values()) - mapped),
            "callers": sorted({caller for caller, _ in callers}),
            **map_figures(),
        }
        results.put(report)


def map_figures() -> dict:
    """The inherited map's size; without it, the seconds of one full map (the warm-up's walk)."""
    import inspect

    maps = (inspect.modulesbyfile, inspect._filesbymodname)
    size = sum(sys.getsizeof(m) + sum(sys.getsizeof(k) for k in m) for m in maps)
    for m in maps:
        m.clear()
    started = time.perf_counter()
    inspect.getmodule(inspect.currentframe())
    return {"map_kib": size / 1024, "full_map_seconds": time.perf_counter() - started}


def task(results, dag_file: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dag_file)
    assert not bag.import_errors, bag.import_errors
    BenchOperator().execute(results)


def parent(children: int, dag_file: str) -> dict:
    """A scheduler's stand-in: its forkserver preloads what the environment says, then `children` forks."""
    from airflow.utils.process_utils import set_component_mp_start_method

    set_component_mp_start_method("scheduler")
    reports = forked_reports(task, children, dag_file)
    figures = {name: [r[name] for r in reports] for name in (*FIGURES, "map_kib", "full_map_seconds")}
    return {**figures, "callers": reports[0]["callers"], "rss_kib": forkserver_rss_kib()}


def run_parent(arm: str, children: int, dag_file: Path) -> dict:
    from local_aws import CLIENT_ENV
    from local_aws.stack.environment import TASK_PRELOAD_MODULES, airflow_env

    env = airflow_env(Path(tempfile.mkdtemp(prefix="orchard-caller-bench-")), REPO / "dags")
    env.update(CLIENT_ENV, ORCHARD_PARAM_DEFAULTS="")
    preload = [m for m in TASK_PRELOAD_MODULES if arm == "with" or m != WARM_MODULE]
    env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"] = ",".join(preload)
    command = [sys.executable, __file__, "--parent", "--children", str(children), "--dag", str(dag_file)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--dag", default="auto_labeling", help="the DAG file the children parse")
    parser.add_argument("--parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parent:
        print(json.dumps(parent(args.children, args.dag)))
        return
    dag_file = REPO / "dags" / f"{args.dag}.py"
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    rounds: list[dict[str, dict]] = []
    for round_ in range(args.rounds):
        order = ARMS if round_ % 2 == 0 else ARMS[::-1]
        rounds.append({arm: run_parent(arm, args.children, dag_file) for arm in order})
        print(
            f"round {round_ + 1}: first client "
            + ", ".join(f"{a} {statistics.median(rounds[-1][a]['first_client']):.3f} s" for a in ARMS),
            flush=True,
        )
    summarize(rounds, args.children, args.dag)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def summarize(rounds: list[dict[str, dict]], children: int, dag: str) -> None:
    print(
        f"{len(rounds)} rounds × {children} forked children each (DAG file {dag} parsed first), "
        f"clients {' then '.join(SERVICES)}; medians over the children:"
    )
    for arm in ARMS:
        figures = "; ".join(
            f"{label} {median(rounds, arm, name):.3g} {unit}".rstrip()
            for name, (label, unit) in FIGURES.items()
        )
        rss = statistics.median(r[arm]["rss_kib"] for r in rounds) / 1024
        callers = ", ".join(sorted({c for r in rounds for c in r[arm]["callers"]}))
        print(f"  {arm}: {figures}; caller named {callers}; forkserver RSS {rss:.1f} MiB")
    ratios = "; ".join(
        f"{name} {statistics.median(ratio(r, name) for r in rounds):.3g}"
        for name in FIGURES
        if name != "newly_mapped"
    )
    print(f"  with / without, median of the per-round ratios: {ratios}")
    extra = statistics.median(r["with"]["rss_kib"] - r["without"]["rss_kib"] for r in rounds) / 1024
    print(
        f"  the forkserver's extra memory with the map: VmRSS {extra:+.1f} MiB (median of the per-round "
        f"differences); the map's dicts and key strings {median(rounds, 'with', 'map_kib'):.0f} KiB"
    )
    print(
        f"  one full map of a child's modules (the warm-up's walk, once per forkserver): "
        f"{median(rounds, 'without', 'full_map_seconds'):.2f} s"
    )


def median(rounds: list[dict[str, dict]], arm: str, name: str) -> float:
    return statistics.median(v for r in rounds for v in r[arm][name])


def ratio(round_: dict[str, dict], name: str) -> float:
    return statistics.median(round_["with"][name]) / statistics.median(round_["without"][name])


if __name__ == "__main__":
    main()
