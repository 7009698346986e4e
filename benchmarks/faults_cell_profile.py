"""Where one fault-matrix cell's time goes: its pytest call profiled (cProfile), split into the parts a cell
pays for.

    .venv/bin/python benchmarks/faults_cell_profile.py pose_training-project.check_export-before
    .venv/bin/python benchmarks/faults_cell_profile.py CELL --warm-up pose_training-find_projects-before

CELL is a test id of tests/faults/test_matrix.py (`<dag_id>-<task_id>-<before|after>`). `--warm-up` runs
another cell first in the same process, unprofiled, so the profiled one is not the process's first (which
also pays the first imports, the in-process execution API's creation and botocore's first model loads).
Prints the cell's phases (setup / run / inventory), then within the run: the waits in triggers (the jobs
themselves: `dag.test()` runs each trigger in line), the tasks' own execution in the in-process task runner
(operators, boto3, the execution API's requests), `time.sleep` in dag.test's loop, and the rest (DAG
serialization, the run's bookkeeping); the top functions by cumulative time go to --top. Also writes the
.prof file (--out) for `python -m pstats`. Prints the load average beside the figures: the machine may be
shared.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PARTS = {  # label: (file suffix, function name) whose cumulative time is that part
    "trigger waits (the jobs)": ("airflow/sdk/definitions/dag.py", "_run_inline_trigger"),
    "tasks (in-process task runner)": ("airflow/sdk/execution_time/supervisor.py", "run_task_in_process"),
    "time.sleep (the test thread)": ("~", "<built-in method time.sleep>"),
    "dag.test() in all": ("airflow/sdk/definitions/dag.py", "test"),
    "inventory": ("tests/faults/pipelines.py", "settled_inventory"),
}


class ProfileOneCell:
    """A pytest plugin: profiles the call phase of the test whose id ends with `[cell]`."""

    def __init__(self, cell: str, out: Path):
        self.suffix, self.out = f"[{cell}]", out

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        if not item.nodeid.endswith(self.suffix):
            return (yield)
        profile = cProfile.Profile()
        profile.enable()
        try:
            return (yield)
        finally:
            profile.disable()
            profile.dump_stats(self.out)


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    return sum(
        row[3] for (path, _, func), row in stats.stats.items() if func == name and path.endswith(suffix)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cell", help="e.g. pose_training-project.check_export-before")
    parser.add_argument("--warm-up", help="a cell run first, unprofiled, in the same process")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "orchard-fault-cell.prof")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    os.chdir(REPO)
    sys.path[:0] = [str(REPO), str(REPO / "plugins")]
    # pytest runs the node ids in the order given: the warm-up first
    cells = ([args.warm_up] if args.warm_up else []) + [args.cell]
    os.environ.setdefault("ORCHARD_FAULTS_REPORT", str(args.out.with_suffix(".md")))
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    code = pytest.main(
        [f"tests/faults/test_matrix.py::test_cell[{cell}]" for cell in cells]
        + ["-m", "faults or not faults", "-p", "no:cacheprovider", "-q"],
        plugins=[ProfileOneCell(args.cell, args.out)],
    )
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    if not args.out.exists():
        print(f"no profile written (pytest exit {code}): is {args.cell} a cell of test_matrix.py?")
        return 1
    stats = pstats.Stats(str(args.out))
    print(f"\n{args.cell} (pytest exit {code}; load average before {load_before}, after {load_after})")
    for line in args.out.with_suffix(".md").read_text().splitlines():
        if f"| {args.cell.split('-', 1)[0]} |" in line:
            print("  matrix row:", line)
    for label, (suffix, name) in PARTS.items():
        print(f"  {label:32s} {cumulative(stats, suffix, name):7.1f} s")
    print(f"\ntop {args.top} by cumulative time ({args.out}):")
    stats.sort_stats("cumulative").print_stats(args.top)
    return code


if __name__ == "__main__":
    sys.exit(main())
