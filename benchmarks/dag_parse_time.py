"""DAG parse time as Airflow's DAG processor pays it, against the budgets of docs/architecture.md ("Tests")
and as a ratio to an anchor DAG measured in the same run (issue 17.3).

For each DAG file: the time to import its modules beyond airflow.sdk (budget 300 ms; the airflow.*
part is pre-imported once by the processor, the rest is imported again by every parse) and the time to
execute the file once they are loaded (budget 50 ms), each the median of --runs fresh processes.
The measurer is tests/dags/parse_budget.py, the same one the DAG integrity tests use.

The anchor, benchmarks/parse_anchor/example_batch_anchor.py, is a 5-operator DAG written like the Amazon
provider's system tests (example_batch.py). It is measured in the same worker and the same runs as the
files, so each file's imports and own work (parse) are also given as a ratio to it: targets parse ≤ 1.0×
and imports ≤ 1.5× the anchor (--anchor-strict makes those decide the exit code too).

    .venv/bin/python benchmarks/dag_parse_time.py                 # every file in dags/
    .venv/bin/python benchmarks/dag_parse_time.py --runs 9 tests/dags/samples/good_dag.py
    .venv/bin/python benchmarks/dag_parse_time.py --floor         # + Airflow's floor for each file
    .venv/bin/python benchmarks/dag_parse_time.py --profile 12    # + where each file's own work goes

--floor adds, in CPU time, each file against two provider-style twins of its size (its task count, and
its params as plain Params): what Airflow itself costs for such a DAG, so what is orchard's above that,
and Airflow's cost per operator and per param (benchmarks/_parse_floor.py). --profile N adds a cProfile
of each file's own work: the Airflow steps that dominate, then the N functions with the most own time.

Exits 1 when a file does not load or is over budget, so CI can run it as is.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.dags.parse_budget import IMPORT_BUDGET_MS, PARSE_BUDGET_MS, ParseTiming, measure

DAGS_FOLDER = REPO_ROOT / "dags"
EXAMPLE = "tests/dags/samples/good_dag.py"
ANCHOR = REPO_ROOT / "benchmarks" / "parse_anchor" / "example_batch_anchor.py"
ANCHOR_TASKS = 5
PARSE_RATIO_TARGET = 1.0
IMPORT_RATIO_TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    files = args.files or sorted(p for p in DAGS_FOLDER.glob("*.py") if p.name != "__init__.py")
    if not files:
        print(f"No DAG files in {DAGS_FOLDER.relative_to(REPO_ROOT)}/ yet. To see the measurer work, run:")
        print(f"  .venv/bin/python benchmarks/dag_parse_time.py {EXAMPLE}")
        return 0
    print(_environment(args.runs))
    resolved = [Path(f).resolve() for f in files]
    timings = measure([ANCHOR, *resolved], runs=args.runs, statistic=statistics.median)
    anchor = timings.pop(ANCHOR.resolve())
    if anchor.error:
        raise SystemExit(f"the anchor {_shown_path(ANCHOR)} does not load: {anchor.error}")
    print(_table(timings.values(), anchor))
    ok = all(_verdict(t) == "ok" for t in timings.values())
    _extra_reports(args, resolved)
    if args.anchor_strict:
        ok = ok and all(not _anchor_misses(t, anchor) for t in timings.values())
    return 0 if ok else 1


def _extra_reports(args: argparse.Namespace, files: list[Path]) -> None:
    """--floor and --profile, each in a worker of its own (they fork from it as measure() does)."""
    import _parse_floor

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="orchard-parse-floor-"))
    sys.path[:0] = [str(REPO_ROOT / "plugins")]
    if args.floor:
        rows = _parse_floor.measure_floor(ANCHOR, files, runs=args.runs)
        print(f"\nFloor: own work in CPU ms, median of {args.runs} runs, each x the anchor of its run")
        print(_parse_floor.floor_table(rows, anchor_tasks=ANCHOR_TASKS, shown=_shown_path))
    if args.profile:
        print(f"\nProfile: own work, cProfile with a CPU clock, {args.runs} fresh children per file\n")
        print(_parse_floor.profile_files([ANCHOR, *files], args.runs, args.profile, _shown_path))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="DAG files (default: every file in dags/)")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per file; medians reported")
    parser.add_argument("--floor", action="store_true", help="add each file's provider-style floor")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="add a profile, top N functions")
    parser.add_argument(
        "--anchor-strict", action="store_true", help="exit 1 also when a file misses its ratio to the anchor"
    )
    return parser.parse_args(argv)


def _environment(runs: int) -> str:
    return (
        f"Python {platform.python_version()}, apache-airflow {version('apache-airflow')}, "
        f"apache-airflow-providers-amazon {version('apache-airflow-providers-amazon')}, "
        f"{os.cpu_count()} CPUs; median of {runs} runs; times in ms\n"
    )


def _table(timings, anchor: ParseTiming) -> str:
    header = (
        "file",
        "airflow.* imports",
        "other imports",
        f"imports (<= {IMPORT_BUDGET_MS:.0f})",
        f"x anchor (<= {IMPORT_RATIO_TARGET:.1f})",
        f"parse (<= {PARSE_BUDGET_MS:.0f})",
        f"x anchor (<= {PARSE_RATIO_TARGET:.1f})",
        "verdict",
    )
    rows = [header, _row(anchor, anchor, name="anchor: " + _shown_path(ANCHOR))]
    rows += [_row(t, anchor) for t in timings]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(_aligned(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    errors = [f"{t.path.name}: {t.error}" for t in timings if t.error]
    return "\n".join(lines + [""] + errors).rstrip()


def _ratio(value: float, anchor: float) -> float:
    return value / anchor if anchor > 0 else float("inf")


def _anchor_misses(timing: ParseTiming, anchor: ParseTiming) -> list[str]:
    if timing.error:
        return ["does not load"]
    misses = []
    if _ratio(timing.import_ms, anchor.import_ms) > IMPORT_RATIO_TARGET:
        misses.append("imports")
    if _ratio(timing.parse_ms, anchor.parse_ms) > PARSE_RATIO_TARGET:
        misses.append("parse")
    return misses


def _aligned(row: tuple[str, ...], widths: list[int]) -> list[str]:
    """File left, figures right, verdict left."""
    last = len(row) - 1
    pairs = enumerate(zip(row, widths))
    return [cell.ljust(w) if i in (0, last) else cell.rjust(w) for i, (cell, w) in pairs]


def _row(timing: ParseTiming, anchor: ParseTiming, name: str | None = None) -> tuple[str, ...]:
    name = name or _shown_path(timing.path)
    if timing.error:
        return (name, "-", "-", "-", "-", "-", "-", _verdict(timing))
    verdict = _verdict(timing)
    misses = _anchor_misses(timing, anchor) if timing is not anchor else []
    if misses:
        verdict += f" (over the anchor: {', '.join(misses)})"
    return (
        name,
        f"{timing.airflow_import_ms:.1f}",
        f"{timing.other_import_ms:.1f}",
        f"{timing.import_ms:.1f}",
        f"{_ratio(timing.import_ms, anchor.import_ms):.2f}",
        f"{timing.parse_ms:.1f}",
        f"{_ratio(timing.parse_ms, anchor.parse_ms):.2f}",
        verdict,
    )


def _verdict(timing: ParseTiming) -> str:
    if timing.error:
        return "does not load"
    checks = (("imports", timing.imports_within_budget), ("parse", timing.parse_within_budget))
    over = [what for what, within in checks if not within]
    return "ok" if not over else "over budget: " + ", ".join(over)


def _shown_path(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
