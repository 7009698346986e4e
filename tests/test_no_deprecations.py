"""orchard's own code uses nothing deprecated: importing every module, parsing every DAG and raising an
InputError (a task's failure path) warns no DeprecationWarning from a file of orchard's.

pytest's config ignores DeprecationWarning for the whole suite (pyproject.toml), and a module imported
once warns once per process, so the check runs in a fresh interpreter that records every warning and
keeps those whose source file is orchard's (plugins/, dags/, include/, local_aws/): what a third-party
library warns about its own internals is not ours to fix, what it warns about our call of it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OURS = [REPO_ROOT / name for name in ("plugins", "dags", "include", "local_aws")]
PACKAGES = {"orchard": REPO_ROOT / "plugins" / "orchard", "local_aws": REPO_ROOT / "local_aws"}
SKIPPED = {"local_aws.__main__"}  # a command line: it starts the sandbox when imported


def ours(filename: str) -> bool:
    path = Path(filename).resolve()
    return any(folder in path.parents for folder in OURS)


def orchard_modules() -> list[str]:
    names = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if name not in SKIPPED and "__pycache__" not in parts:
                names.append(name)
    return names


def collect() -> list[dict[str, str]]:
    """Every deprecation warning a file of orchard's causes (run in a fresh interpreter)."""
    import importlib
    import warnings

    # Importing Airflow routes warnings to its logging (it replaces warnings.showwarning); done first, the
    # block below records them instead.
    from airflow.dag_processing.dagbag import BundleDagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in orchard_modules():
            importlib.import_module(name)
        bag = BundleDagBag(dag_folder=str(REPO_ROOT / "dags"), bundle_path=REPO_ROOT / "dags")
        from orchard.errors import InputError

        try:
            raise InputError("s3://bucket/missing.csv does not exist: upload it, then clear the task")
        except InputError as error:
            str(error)
        # Were anything to route warnings elsewhere again (Airflow's logging setup), this record is blind.
        rerouted = warnings.showwarning is not warnings._showwarning_orig  # type: ignore[attr-defined]
    # Airflow's DeprecatedImportWarning ("airflow.exceptions.X is deprecated") is a FutureWarning.
    deprecations = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    found = [
        {
            "file": w.filename,
            "line": str(w.lineno),
            "category": w.category.__name__,
            "message": str(w.message),
        }
        for w in caught
        if issubclass(w.category, deprecations) and ours(w.filename)
    ]
    found += [
        {"file": file, "line": "", "category": "import error", "message": e}
        for file, e in bag.import_errors.items()
    ]
    if rerouted:
        found.append({"file": __file__, "line": "", "category": "setup", "message": "warnings were rerouted"})
    return found


def test_orchard_code_warns_no_deprecation():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "plugins"), str(REPO_ROOT)])}
    code = "import json; from tests.test_no_deprecations import collect; print(json.dumps(collect()))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == [], "\n".join(f"{f['file']}:{f['line']} {f['category']}: {f['message']}" for f in found)


def test_the_check_sees_a_deprecated_call_from_orchard_code():
    """The filter keeps a warning raised from orchard's files and drops one from a third-party file."""
    assert ours(str(REPO_ROOT / "plugins" / "orchard" / "errors.py"))
    assert ours(str(REPO_ROOT / "dags" / "pose_training.py"))
    assert not ours(str(REPO_ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "airflow" / "x.py"))
    assert "orchard.errors" in orchard_modules() and "local_aws.__main__" not in orchard_modules()
