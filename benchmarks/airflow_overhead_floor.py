"""Airflow's floor under each pipeline's run overhead (issue 17.1): the real run beside a do-nothing twin.

    .venv/bin/python benchmarks/airflow_overhead_floor.py [--dags edge_deployment pose_training]
        [--rounds 3] [--job-seconds S] [--sandbox-port 0] [--port 0] [--json out.json]

Each round runs, on the local stack as `make demo` does (local_aws.stack.run_demo, a fresh stack per
demo, free ports by default), first the real pipelines, then their twins (benchmarks/_overhead_twin.py):
DAGs generated from the real DAG objects into a temporary dags folder, with the same tasks, groups,
mapped tasks, dependencies, trigger rules, setups/teardowns and branches, whose tasks do nothing but
defer to the standard provider's DateTimeTrigger as often as the real task deferred in the first real
run, each time for the job seconds that ran during that deferral (`--job-seconds S`: every deferrable
task defers once for S seconds instead). A twin's "jobs" are its sleeps, read back from XCom.

Per pipeline, medians over the rounds (successful runs only) of wall, seconds outside jobs (wall − jobs)
and overhead %, real and twin; "floor share" = twin outside / real outside: how much of the real overhead
Airflow itself costs for that shape on this machine (the rest is orchard's own work: task code, AWS
calls, waits no job description covers); and the job seconds that would bring the twin's overhead to
15 % (its outside seconds × 85/15, taking the floor as fixed while the jobs grow). Then, per pipeline,
the tasks whose seconds running outside jobs (map indexes summed, medians) the real run exceeds its twin's
by the most: where orchard's own work sits (also in --json, "task_outside_s" per run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins"), str(REPO / "benchmarks")]

import airflow_overhead as overhead  # noqa: E402  (benchmarks/ is not a package)
from _overhead_twin import TWIN_PREFIX, TaskPlan, dag_shape, default_plan, twin_source  # noqa: E402

from local_aws.stack import demo as demo_mod  # noqa: E402
from local_aws.stack.environment import DAGS_FOLDER_ENV, dags_folder  # noqa: E402

TARGET = 0.15
DEMO_INTERRUPTED = 130  # run_demo's exit code when a signal stopped it


def task_instances(stack, dag_id: str, run_id: str) -> list[dict]:
    path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000"
    return stack.api("GET", path).get("task_instances", [])


def deferrals(samples, dag_id: str, run_id: str, jobs: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Per task key (`task[map]`), the job seconds inside each stretch of samples it spent deferred (a
    stretch ends at a sample that shows the task in another state or no more; a failed sample is no sample).
    A stretch counts until the next sample: the sampling period, 1 s."""
    stretches: dict[str, list[list[float]]] = {}
    deferred_before: set[str] = set()
    for sample in samples:
        deferred_now = {
            key
            for (d, r, key), state in sample.states.items()
            if (d, r) == (dag_id, run_id) and state == "deferred"
        }
        for key in deferred_now:
            if key in deferred_before:
                stretches[key][-1][1] = sample.t
            else:
                stretches.setdefault(key, []).append([sample.t, sample.t])
        deferred_before = deferred_now
    return {
        key: [_overlap(jobs, start, end + 1.0) for start, end in spans] for key, spans in stretches.items()
    }


def task_outside(samples, dag_id: str, run_id: str, jobs: list[tuple[float, float]]) -> dict[str, float]:
    """Per task id (map indexes summed), the seconds it was running while none of the run's jobs ran: as
    airflow_overhead.run_stats counts its top tasks, but every task, so that real and twin compare task by
    task. Each sample stands for the sampling period (the median gap between samples)."""
    gaps = [b.t - a.t for a, b in zip(samples, samples[1:])]
    period = statistics.median(gaps) if gaps else 1.0
    seconds: dict[str, float] = {}
    for sample in samples:
        if overhead.in_any(sample.t, jobs):
            continue
        for (d, r, key), state in sample.states.items():
            if (d, r) == (dag_id, run_id) and state == "running":
                task_id = key.split("[", 1)[0]
                seconds[task_id] = seconds.get(task_id, 0.0) + period
    return seconds


def _overlap(jobs: list[tuple[float, float]], start: float, end: float) -> float:
    return overhead.union_s([(max(a, start), min(b, end)) for a, b in jobs if min(b, end) > max(a, start)])


def measured_plan(dag, shapes, stack, run_id: str, jobs, samples) -> dict[str, TaskPlan]:
    """The twin's plan from a real run: map counts, deferrals and their job seconds, branches, self-skips."""
    tis = task_instances(stack, dag.dag_id, run_id)
    intervals = [
        (j.start, j.end or time.time()) for j in jobs if overhead.owned_by(j, dag.dag_id) and j.start
    ]
    waits = deferrals(samples, dag.dag_id, run_id, intervals)
    plans = {}
    for shape in shapes:
        mine = sorted(
            (ti for ti in tis if ti["task_id"] == shape.task_id), key=lambda ti: ti.get("map_index", -1)
        )
        plan = TaskPlan(sleeps=[])
        for ti in mine or [{"map_index": -1}]:
            key = shape.task_id + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
            seconds = [round(s, 1) for s in waits.get(key, [])]
            plan.sleeps.append(seconds or ([0.0] if shape.deferrable else []))
        ran = [ti for ti in mine if ti.get("try_number", 0) > 0]
        plan.skip = bool(ran) and all(ti.get("state") == "skipped" for ti in ran)
        if shape.branch:
            state = {ti["task_id"]: ti for ti in tis}
            plan.follow = sorted(
                task_id
                for task_id in dag.task_dict[shape.task_id].downstream_task_ids
                if state.get(task_id, {}).get("state") != "skipped" or state[task_id].get("try_number", 0) > 0
            )
        plans[shape.task_id] = plan
    return plans


def twin_jobs(stack, twin_id: str, run_id: str) -> list[overhead.Job]:
    """The twin's sleeps: the [start, end] spans each twin task returned."""
    base = f"/dags/{twin_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    entries = stack.api("GET", f"{base}/~/xcomEntries?xcom_key=return_value&limit=1000").get(
        "xcom_entries", []
    )
    jobs = []
    for entry in entries:
        value = stack.api(
            "GET",
            f"{base}/{entry['task_id']}/xcomEntries/return_value?map_index={entry.get('map_index', -1)}",
        ).get("value")
        spans = json.loads(value) if isinstance(value, str) else value
        jobs += [overhead.Job("twin", f"{twin_id}/{entry['task_id']}", a, b) for a, b in spans or []]
    return jobs


def run_round(
    dag_ids: list[str], folder: Path | None, args, after, per_task: dict[tuple[str, str], dict[str, float]]
) -> list[overhead.RunStats]:
    """One demo of `dag_ids` (from `folder`, or dags/); `after(stack, rows, jobs, samples)` sees the runs;
    `per_task[(dag_id, run_id)]` gets each run's task_outside."""
    rows: list[overhead.RunStats] = []
    sampler: dict = {}

    def on_started(stack):
        sampler["s"] = overhead.Sampler(stack)
        sampler["s"].start()

    def before_stop(stack, results):
        sampler["s"].stopped.set()
        sampler["s"].join(timeout=10)
        samples, notes = sampler["s"].samples, []
        if folder is None:
            jobs = overhead.sandbox_jobs(stack.sandbox_url, notes)
        else:
            jobs = [j for d, r in results.items() if r.run_id != "-" for j in twin_jobs(stack, d, r.run_id)]
        for dag_id, result in results.items():
            if result.run_id != "-":
                row = overhead.run_stats(stack, dag_id, result.run_id, jobs, samples)
                rows.append(row)
                spans = [(j.start, j.end or time.time()) for j in row.jobs]
                per_task[(dag_id, result.run_id)] = task_outside(samples, dag_id, result.run_id, spans)
        after(stack, rows, jobs, samples)

    saved = os.environ.get(DAGS_FOLDER_ENV)
    os.environ[DAGS_FOLDER_ENV] = str(folder or dags_folder())
    try:
        code = demo_mod.run_demo(
            dag_ids,
            timeout_s=args.timeout,
            sandbox_port=args.sandbox_port,
            api_port=args.port,
            on_started=on_started,
            before_stop=before_stop,
        )
    finally:
        os.environ.pop(DAGS_FOLDER_ENV) if saved is None else os.environ.update({DAGS_FOLDER_ENV: saved})
    if code == DEMO_INTERRUPTED:  # run_demo caught Ctrl-C / SIGTERM and stopped its stack: so do we
        raise KeyboardInterrupt("demo interrupted")
    return rows


def load_real_dags(dag_ids: list[str] | None) -> dict:
    from tests.dag_files import load_dag

    files = sorted(dags_folder().glob("*.py"))
    dags = {f.stem: load_dag(f) for f in files if not dag_ids or f.stem in dag_ids}
    return {dag.dag_id: dag for dag in dags.values()}


def medians(rows: list[overhead.RunStats]) -> dict[str, dict[str, float]]:
    by_dag: dict[str, list[overhead.RunStats]] = {}
    for row in rows:
        if row.state == "success":
            by_dag.setdefault(row.dag_id.removeprefix(TWIN_PREFIX), []).append(row)
    return {
        dag_id: {
            "runs": len(runs),
            "wall_s": statistics.median(r.wall_s for r in runs),
            "job_s": statistics.median(r.job_s for r in runs),
            "outside_s": statistics.median(r.wall_s - r.job_s for r in runs),
            "overhead": statistics.median(r.overhead for r in runs),
        }
        for dag_id, runs in by_dag.items()
    }


def task_medians(rows: list[overhead.RunStats], per_task: dict) -> dict[str, dict[str, float]]:
    """Per pipeline (twin prefix dropped), per task id: the median over its successful runs of task_outside
    (0 in a run where the task never ran outside a job)."""
    runs: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        if row.state == "success" and (row.dag_id, row.run_id) in per_task:
            runs.setdefault(row.dag_id.removeprefix(TWIN_PREFIX), []).append(
                per_task[(row.dag_id, row.run_id)]
            )
    return {
        dag_id: {
            task_id: statistics.median(run.get(task_id, 0.0) for run in found)
            for task_id in sorted({t for run in found for t in run})
        }
        for dag_id, found in runs.items()
    }


def task_report(real: dict, twin: dict, top: int = 8) -> str:
    """Per pipeline, the tasks whose seconds outside jobs the real run exceeds its twin's by the most."""
    lines = []
    for dag_id in sorted(set(real) & set(twin)):
        r, t = real[dag_id], twin[dag_id]
        gaps = sorted(((r.get(k, 0.0) - t.get(k, 0.0), k) for k in set(r) | set(t)), reverse=True)
        lines.append(
            f"\n{dag_id}: real {sum(r.values()):.0f} s, twin {sum(t.values()):.0f} s of tasks running outside jobs "
            f"(map indexes summed, medians); the {top} largest real − twin:"
        )
        lines += [
            f"  {k:45} real {r.get(k, 0.0):5.0f}  twin {t.get(k, 0.0):5.0f}  {d:+.0f}" for d, k in gaps[:top]
        ]
    return "\n".join(lines)


def report(real: dict, twin: dict) -> str:
    head = (
        f"{'DAG':20} {'n':>3} {'real wall':>9} {'out s':>6} {'ovh':>5} | {'n':>3} {'twin wall':>9} {'job s':>6} "
        f"{'out s':>6} {'ovh':>5} | {'floor share':>11} {'orchard s':>9} {'jobs for 15 %':>13}"
    )
    lines = [head, "-" * len(head)]
    for dag_id in sorted(set(real) | set(twin)):
        r, t = real.get(dag_id), twin.get(dag_id)
        left = (
            f"{r['runs']:3d} {r['wall_s']:9.0f} {r['outside_s']:6.0f} {r['overhead']:5.0%}"
            if r
            else f"{'-':>26}"
        )
        right = (
            f"{t['runs']:3d} {t['wall_s']:9.0f} {t['job_s']:6.0f} {t['outside_s']:6.0f} {t['overhead']:5.0%}"
            if t
            else f"{'-':>33}"
        )
        share = orchard = need = "-"
        if t:
            need = f"{t['outside_s'] * (1 - TARGET) / TARGET:10.0f} s"
        if r and t and r["outside_s"] > 0:
            share, orchard = (
                f"{t['outside_s'] / r['outside_s']:.0%}",
                f"{r['outside_s'] - t['outside_s']:.0f}",
            )
        lines.append(f"{dag_id:20} {left} | {right} | {share:>11} {orchard:>9} {need:>13}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", nargs="*", default=None, help="DAG ids (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--job-seconds", type=float, help="twins only: every deferral sleeps this long")
    parser.add_argument(
        "--map-count", type=int, default=2, help="with --job-seconds: map indexes per mapped task"
    )
    parser.add_argument("--sandbox-port", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()

    dags = load_real_dags(args.dags)
    shapes = {dag_id: dag_shape(dag) for dag_id, dag in dags.items()}
    folder = Path(tempfile.mkdtemp(prefix="orchard-twins-"))
    real_rows: list[overhead.RunStats] = []
    twin_rows: list[overhead.RunStats] = []
    per_task: dict[tuple[str, str], dict[str, float]] = {}

    def write_twins(plans: dict[str, dict[str, TaskPlan]]) -> None:
        for dag_id, plan in plans.items():
            (folder / f"{TWIN_PREFIX}{dag_id}.py").write_text(twin_source(dags[dag_id], shapes[dag_id], plan))

    def plan_from_first_run(stack, rows, jobs, samples):
        if any(folder.glob("*.py")):
            return
        write_twins(
            {
                row.dag_id: measured_plan(
                    dags[row.dag_id], shapes[row.dag_id], stack, row.run_id, jobs, samples
                )
                for row in rows
                if row.state == "success"
            }
        )

    if args.job_seconds is not None:
        write_twins({d: default_plan(shapes[d], args.job_seconds, args.map_count) for d in dags})
    started = time.monotonic()
    try:
        for n in range(args.rounds):
            real = (
                run_round(list(dags), None, args, plan_from_first_run, per_task)
                if args.job_seconds is None
                else []
            )
            twins = sorted(TWIN_PREFIX + p.stem.removeprefix(TWIN_PREFIX) for p in folder.glob("*.py"))
            twin = run_round(twins, folder, args, lambda *_: None, per_task) if twins else []
            real_rows += real
            twin_rows += twin
            print(f"\nround {n + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
            print(overhead.table(real + twin), flush=True)
    except KeyboardInterrupt:  # a stopped demo ends the benchmark (no next round's stack); report what ran
        print("\ninterrupted: no more rounds; the figures below are the finished rounds'", flush=True)
    with contextlib.suppress(OSError):
        print(
            f"\nload average: {os.getloadavg()[0]:.1f} / {os.getloadavg()[2]:.1f} (1 / 15 min); twins in {folder}"
        )
    print(
        f"\nairflow_overhead_floor ({os.cpu_count()} cores, {args.rounds} rounds, medians of successful runs):"
    )
    print(report(medians(real_rows), medians(twin_rows)))
    print(task_report(task_medians(real_rows, per_task), task_medians(twin_rows, per_task)))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        **{k: v for k, v in vars(r).items() if k != "jobs"},
                        "jobs": len(r.jobs),
                        "task_outside_s": per_task.get((r.dag_id, r.run_id), {}),
                    }
                    for r in real_rows + twin_rows
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
