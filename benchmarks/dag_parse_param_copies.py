"""What orchard's params cost a DAG parse: deep copies that share the schema vs Airflow's full copies.

    .venv/bin/python benchmarks/dag_parse_param_copies.py [--runs 9] [dags/auto_labeling.py ...]

Airflow deep-copies the DAG's params for every operator at every level of its class hierarchy
(`get_merged_defaults`). orchard's Param builders (plugins/orchard/params.py, `_cheap_to_copy`) make
those copies share the schema and copy only the value. This measures each DAG file's own work (its
imports already loaded, as tests/dags/parse_budget.py measures it) with that as built ("shared") and
with `_cheap_to_copy` switched off in the child, so every copy is Airflow's full one ("full"), and the
provider-style anchor DAG (benchmarks/parse_anchor/) in the same runs. Every sample is a fresh forked
child of one worker holding airflow.sdk; the variants alternate within each run, so load changes hit both.
Prints per file the median parse CPU ms of each variant, the median per-run shared/full ratio, and each
variant as a ratio to the anchor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from tests.dags.parse_budget import (  # noqa: E402
    _exec_dag_file,
    _run_statements,
    _warm_up_dag_machinery,
    freeze_like_the_dag_processor,
    scan_imports,
)

ANCHOR = REPO / "benchmarks" / "parse_anchor" / "example_batch_anchor.py"
VARIANTS = ("shared", "full")


def _child(path: Path, variant: str) -> float:
    """CPU ms of parsing `path` in a fresh fork, its imports loaded first (untimed). CPU time, not wall
    time: on a shared, loaded machine the wall time of a 50 ms parse varies by more than what is measured."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        sys.path.append(str(path.parent))
        imports = scan_imports(path)
        for group in (imports.baseline, imports.airflow, imports.other):
            _run_statements(group)
        if variant == "full":
            import orchard.params

            orchard.params._cheap_to_copy = lambda param: param  # every copy is Airflow's full deep copy
        started = time.process_time()
        _exec_dag_file(str(path))
        milliseconds = (time.process_time() - started) * 1000
        with os.fdopen(write_end, "w") as out:
            out.write(json.dumps(milliseconds))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        text = report.read()
    os.waitpid(pid, 0)
    return json.loads(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    files = [p.resolve() for p in args.files] or sorted((REPO / "dags").glob("[!_]*.py"))
    os.environ.setdefault("AIRFLOW_HOME", str(Path("/tmp") / "orchard-parse-param-copies"))
    import airflow.sdk  # noqa: F401  what the DAG processor holds before it forks

    _warm_up_dag_machinery()
    freeze_like_the_dag_processor()  # as the DAG processor does before it forks a parsing child
    samples = {f: {v: [] for v in VARIANTS} for f in files}
    anchors: list[float] = []
    for run in range(args.runs):
        anchors.append(_child(ANCHOR, "shared"))
        for path in files:
            order = VARIANTS if run % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                samples[path][variant].append(_child(path, variant))
        print(f"  run {run + 1}/{args.runs}, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    med = statistics.median
    anchor = med(anchors)
    print(
        f"parse CPU ms (file's own work), median of {args.runs} runs; anchor {anchor:.1f} ms; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(
        "| file | full copies ms | shared schema ms | shared/full (per run) | full x anchor | shared x anchor |"
    )
    print("|---|---|---|---|---|---|")
    for path, by in samples.items():
        ratio = med(s / f for s, f in zip(by["shared"], by["full"], strict=True))
        to_anchor = {v: med(x / a for x, a in zip(by[v], anchors, strict=True)) for v in VARIANTS}
        print(
            f"| {path.relative_to(REPO)} | {med(by['full']):.1f} | {med(by['shared']):.1f} | {ratio:.2f} "
            f"| {to_anchor['full']:.2f} | {to_anchor['shared']:.2f} |"
        )


if __name__ == "__main__":
    main()
