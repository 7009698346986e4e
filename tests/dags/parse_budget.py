"""Parse budget of DAG files, measured the way Airflow's DAG processor pays for them.

The DAG processor keeps `airflow.sdk` loaded, pre-imports the `airflow.*` modules a file imports
(`[dag_processor] parsing_pre_import_modules`, see `_pre_import_airflow_modules`), then forks a child
that executes the file. So a file costs two things:

- its imports beyond `airflow.sdk` (budget IMPORT_BUDGET_MS): provider operator modules, orchard, and
  anything heavy (pandas, torch, a boto3 client at import time);
- its own top-level work once those are loaded (budget PARSE_BUDGET_MS), paid on every parse.

Measurement mirrors that: one worker process imports `airflow.sdk` and builds a throwaway DAG (the
baseline, not counted: what the processor holds before it forks), freezes its objects out of the garbage
collector as the processor does (`freeze_like_the_dag_processor`), then forks a fresh child per file and
run. The child times the file's top-level import statements (found by a static AST scan), then times
executing the file with them loaded, as Airflow's importer does. Each
figure is the minimum over `runs` children: other work on a busy 2-core machine only ever adds time, so
the fastest run is the file's own cost (a median let a loaded machine fail files that fit the budget).

Run as a script only by `measure()` (the `--worker` entry point).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMPORT_BUDGET_MS = 300.0
PARSE_BUDGET_MS = 50.0
BASELINE_MODULE = "airflow.sdk"

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the pytest config and Airflow put on sys.path: plugins/ (so `orchard` imports) and the repo root.
IMPORT_PATHS = (REPO_ROOT / "plugins", REPO_ROOT)


@dataclass(frozen=True)
class ParseTiming:
    """Cost of one DAG file (milliseconds, its runs folded by `measure`'s statistic), or the error that stopped it from loading."""

    path: Path
    airflow_import_ms: float  # `airflow.*` beyond airflow.sdk: the processor pre-imports these once
    other_import_ms: float  # everything else (orchard, third party): imported again by every parse
    parse_ms: float  # executing the file itself, its imports already loaded
    runs: int
    error: str | None = None

    @property
    def import_ms(self) -> float:
        return self.airflow_import_ms + self.other_import_ms

    @property
    def imports_within_budget(self) -> bool:
        return self.import_ms <= IMPORT_BUDGET_MS

    @property
    def parse_within_budget(self) -> bool:
        return self.parse_ms <= PARSE_BUDGET_MS


def measure(
    paths: Iterable[Path | str],
    runs: int = 3,
    timeout_s: float = 300,
    statistic: Callable[[Iterable[float]], float] = min,
) -> dict[Path, ParseTiming]:
    """Time each file in `runs` fresh children of one worker that holds only airflow.sdk.

    `statistic` folds the runs: `min` for the budget checks, `statistics.median` for reported figures.
    """
    files = [Path(p).resolve() for p in paths]
    if not files:
        return {}
    command = [sys.executable, __file__, "--worker", "--runs", str(runs), *map(str, files)]
    with tempfile.TemporaryDirectory(prefix="orchard-parse-budget-") as scratch_home:
        env = _worker_env(scratch_home)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"parse-budget worker failed ({done.returncode}):\n{done.stderr[-4000:]}")
    samples = json.loads(done.stdout)
    return {path: _timing(path, samples[str(path)], runs, statistic) for path in files}


def _worker_env(scratch_home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, IMPORT_PATHS), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    # Never let a measurement create ~/airflow: without an AIRFLOW_HOME (the tests set one), use scratch.
    env.setdefault("AIRFLOW_HOME", scratch_home)
    return env


def _timing(
    path: Path, samples: list[dict], runs: int, statistic: Callable[[Iterable[float]], float]
) -> ParseTiming:
    errors = [s["error"] for s in samples if s.get("error")]
    if errors:
        return ParseTiming(path, 0.0, 0.0, 0.0, runs, error=errors[0])
    return ParseTiming(
        path,
        airflow_import_ms=statistic(s["airflow_import_ms"] for s in samples),
        other_import_ms=statistic(s["other_import_ms"] for s in samples),
        parse_ms=statistic(s["parse_ms"] for s in samples),
        runs=runs,
    )


# --- static scan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileImports:
    """A file's top-level import statements, as source, split the way the DAG processor loads them."""

    baseline: tuple[str, ...]  # from airflow.sdk: already loaded in the processor's child
    airflow: tuple[str, ...]  # other airflow.* modules: pre-imported by the processor
    other: tuple[str, ...]  # the rest: imported by the file itself on every parse

    @property
    def modules(self) -> tuple[str, ...]:
        return self.airflow + self.other


def scan_imports(path: Path | str) -> FileImports:
    """Top-level `import`/`from ... import` statements of a file (what Airflow's scan looks at)."""
    tree = ast.parse(Path(path).read_bytes(), filename=str(path))
    groups: dict[str, list[str]] = {"baseline": [], "airflow": [], "other": []}
    for node in tree.body:
        module = _imported_module(node)
        if module is None or module == "__future__":
            continue
        groups[_import_group(module)].append(ast.unparse(node))
    return FileImports(*(tuple(groups[g]) for g in ("baseline", "airflow", "other")))


def _imported_module(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Import):
        return node.names[0].name  # `import a, b` is rare in DAG files; the first decides the group
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return node.module
    return None


def _import_group(module: str) -> str:
    if module == BASELINE_MODULE:
        return "baseline"
    return "airflow" if module == "airflow" or module.startswith("airflow.") else "other"


# --- worker: runs in its own process -----------------------------------------------------------------


def _worker(paths: Sequence[str], runs: int) -> dict[str, list[dict]]:
    import airflow.sdk  # noqa: F401  the baseline every child inherits, never timed

    _warm_up_dag_machinery()
    freeze_like_the_dag_processor()
    results: dict[str, list[dict]] = {p: [] for p in paths}
    for _ in range(runs):  # interleave files so a noisy moment does not hit one file's every run
        for path in paths:
            results[path].append(_in_fresh_child(path))
    return results


def _warm_up_dag_machinery() -> None:
    """Build one throwaway DAG before forking.

    Airflow imports its timetable and asset machinery lazily, on the first DAG a process builds (~13 ms
    here). The DAG processor has all of it loaded before it forks a parsing child, so charging it to the
    first file parsed would blame the file for Airflow's own start-up.
    """
    from airflow.sdk import DAG

    DAG(dag_id="parse_budget_warm_up", schedule=None)


def freeze_like_the_dag_processor() -> None:
    """``gc.freeze()`` before forking, as the DAG processor does (``DagFileProcessorManager.before_run``,
    airflow/dag_processing/manager.py: "To prevent COW in forked process parsing dag file").

    Without it a child that allocates enough to trigger a full collection walks every object inherited
    from the parent, writing to each one's GC header: every page of the parent's heap is copied on write
    (~8,000 page faults, ~120 ms here) inside whatever the file was doing. Whether that happens depends on
    the parent's collection counters at the fork, so unfrozen figures jump by 10x from one run to the next
    and charge files for a collection the DAG processor's children never make."""
    import gc

    gc.freeze()


def _in_fresh_child(path: str) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: measure, report through the pipe, never return into the worker
        os.close(read_end)
        with os.fdopen(write_end, "w") as out:
            json.dump(_measure_in_this_process(path), out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        text = report.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"error": "child process died while parsing"}


def _measure_in_this_process(path: str) -> dict:
    _silence_stdout()  # a DAG file's prints must not reach the worker's JSON output
    sys.path.append(str(Path(path).parent))  # Airflow puts the bundle (dags folder) on sys.path
    try:
        imports = scan_imports(path)
        _run_statements(imports.baseline)
        airflow_s = _timed(_run_statements, imports.airflow)
        other_s = _timed(_run_statements, imports.other)
        parse_s = _timed(_exec_dag_file, path)
    except BaseException as error:  # noqa: BLE001  any failure is the file's, reported not raised
        return {"error": f"{type(error).__name__}: {error}"}
    return {"airflow_import_ms": airflow_s * 1e3, "other_import_ms": other_s * 1e3, "parse_ms": parse_s * 1e3}


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def _run_statements(statements: Sequence[str]) -> None:
    if statements:
        exec(compile("\n".join(statements), "<dag file imports>", "exec"), {})


def _exec_dag_file(path: str) -> None:
    """Load the file the way airflow.dag_processing.importers.python_importer does."""
    import importlib.machinery
    import importlib.util

    module_name = "orchard_parse_budget_" + Path(path).stem.replace("-", "_").replace(".", "_")
    loader = importlib.machinery.SourceFileLoader(module_name, path)
    spec = importlib.util.spec_from_loader(module_name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loader.exec_module(module)


def _worker_main(argv: Sequence[str]) -> None:
    runs = int(argv[argv.index("--runs") + 1])
    paths = [a for a in argv[argv.index("--runs") + 2 :]]
    json.dump(_worker(paths, runs), sys.stdout)


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker_main(sys.argv[1:])
