"""DAG discovery: the DAG ids in a folder, as Airflow's own DagBag parses them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_aws.stack.environment import _shown, airflow_env, airflow_home
from local_aws.stack.errors import StackError


@dataclass
class DagFolder:
    """What Airflow finds in a dags folder: DAG ids (→ file) and import errors (file → error)."""

    path: Path
    dags: dict[str, str] = field(default_factory=dict)
    import_errors: dict[str, str] = field(default_factory=dict)


def candidate_files(folder: Path) -> list[Path]:
    """Python files Airflow would parse in safe mode: those mentioning both "airflow" and "dag"."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        text = path.read_bytes().lower()
        if b"airflow" in text and b"dag" in text:
            found.append(path)
    return found


_LIST_DAGS = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder", safe_mode=True)
result = {"dags": {d: str(dag.fileloc) for d, dag in bag.dags.items()}, "import_errors": bag.import_errors}
print("ORCHARD_DAGS=" + json.dumps(result))
"""


def list_dags(folder: Path, env: dict[str, str] | None = None, timeout_s: float = 300) -> DagFolder:
    """The DAG ids in `folder`, as Airflow's own DagBag parses them (in a child process).

    A folder with no candidate file is answered without starting Python, so `make demo` with no DAGs
    yet returns at once.
    """
    result = DagFolder(folder)
    if not candidate_files(folder):
        return result
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_DAGS, str(folder)],
        env=env if env is not None else airflow_env(airflow_home(), folder),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("ORCHARD_DAGS="):
            parsed = json.loads(line.removeprefix("ORCHARD_DAGS="))
            result.dags = dict(sorted(parsed["dags"].items()))
            result.import_errors = parsed["import_errors"]
            return result
    raise StackError(f"could not list the DAGs in {folder}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


def select_dags(found: DagFolder, requested: Sequence[str] | None) -> list[str]:
    """The DAG ids to run: all of them, or those requested (each must exist)."""
    if not requested:
        return list(found.dags)
    unknown = [d for d in requested if d not in found.dags]
    if unknown:
        known = ", ".join(found.dags) if found.dags else f"none (no DAGs in {_shown(found.path)}/ yet)"
        errors = ""
        if found.import_errors:
            failed = ", ".join(found.import_errors)
            errors = f"\n(and {len(found.import_errors)} file(s) failed to import: {failed})"
        raise StackError(f"demo: unknown DAG id(s): {', '.join(unknown)}\nknown DAG ids: {known}{errors}", 2)
    return list(dict.fromkeys(requested))
