"""Deployed-layout guard: while a DAG runs, Airflow-side code may use only what a deployment ships.

docker-compose and MWAA ship `dags/`, `plugins/` and `requirements.txt`; job code reaches AWS as images or
as S3 archives (`make deploy`). `dag.test()` runs in the pytest process, whose sys.path has the repository
root, so an import of `include` or `local_aws` from a DAG or plugin, or a read of `include/` from disk,
would pass here and fail on AWS — after the billable steps before it. While the guard is active:

* `builtins.__import__` refuses (ModuleNotFoundError, as on AWS) and records an import of a forbidden
  top-level package whose importer is a file under an Airflow-side root, even if already imported;
* a meta-path finder does the same for `importlib.import_module` of one not yet imported;
* an audit hook (events `open`, `os.listdir`, `os.scandir`) refuses and records any access to a path under
  `include/` made while a frame of Airflow-side code is on the calling thread's stack. The sandbox runs
  in threads of this process and reads `include/` itself (an image names a folder): those threads have no
  Airflow-side frame, so they are not concerned.

Violations are recorded as well as raised, so a task that swallows the error still fails the test.
"""

from __future__ import annotations

import builtins
import importlib.abc
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SIDE = (REPO_ROOT / "dags", REPO_ROOT / "plugins")
FORBIDDEN_PACKAGES = ("include", "local_aws", "deploy", "tests")
FORBIDDEN_PATHS = (REPO_ROOT / "include",)
AUDITED_EVENTS = ("open", "os.listdir", "os.scandir")
_FIX = (
    "a deployment (docker-compose, MWAA) ships only dags/ and plugins/: move Airflow-side logic into "
    "plugins/orchard/, and ship job code as an image or with the deploy step (make deploy, orchard.job_code)"
)

_active: LayoutGuard | None = None
_audit_installed = False
_lock = threading.Lock()


class LayoutViolation(ModuleNotFoundError):
    """Airflow-side code used something a deployment does not ship."""


def _under(path: str, roots: Iterable[Path]) -> bool:
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return any(resolved == root or root in resolved.parents for root in roots)


def _audit(event: str, args: tuple) -> None:
    guard = _active
    if guard is None or event not in AUDITED_EVENTS or not args:
        return
    guard._on_path_access(event, args[0])


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, guard: LayoutGuard):
        self.guard = guard

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.guard.packages:
            caller = self.guard._airflow_side_frame(sys._getframe(1))
            if caller:
                self.guard._refuse(f"{caller} imports {fullname} (importlib)", fullname)
        return None


class LayoutGuard:
    """Context manager; `violations` lists what Airflow-side code did that AWS would not allow."""

    def __init__(
        self,
        airflow_side: Sequence[Path] = AIRFLOW_SIDE,
        packages: Sequence[str] = FORBIDDEN_PACKAGES,
        paths: Sequence[Path] = FORBIDDEN_PATHS,
    ):
        self.airflow_side = tuple(Path(p).resolve() for p in airflow_side)
        self.packages = tuple(packages)
        self.paths = tuple(Path(p).resolve() for p in paths)
        self.violations: list[str] = []
        self._import = builtins.__import__
        self._finder = _Finder(self)

    # -- activation
    def __enter__(self) -> LayoutGuard:
        global _active, _audit_installed
        with _lock:
            if _active is not None:
                raise RuntimeError("a layout guard is already active")
            if not _audit_installed:  # audit hooks cannot be removed: one for the process, idle when inactive
                sys.addaudithook(_audit)
                _audit_installed = True
            _active = self
        self._import = builtins.__import__
        builtins.__import__ = self._guarded_import
        sys.meta_path.insert(0, self._finder)
        return self

    def __exit__(self, *exc) -> None:
        global _active
        builtins.__import__ = self._import
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        _active = None

    def report(self) -> str:
        unique = list(dict.fromkeys(self.violations))
        listed = "\n- ".join(unique)
        return f"Airflow-side code used what a deployment does not ship:\n- {listed}\n({_FIX})"

    # -- checks
    def _guarded_import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name.split(".")[0] in self.packages:
            importer = (globals or {}).get("__file__")
            if importer and _under(importer, self.airflow_side):
                self._refuse(f"{importer} imports {name}", name)
        return self._import(name, globals, locals, fromlist, level)

    def _on_path_access(self, event: str, target) -> None:
        if isinstance(target, int):
            return
        try:
            path = os.fsdecode(os.fspath(target))
        except TypeError:
            return
        if not _under(path, self.paths):
            return
        caller = self._airflow_side_frame(sys._getframe(2))
        if caller:
            self.violations.append(f"{caller} reads {path} ({event}): include/ is not on the Airflow machine")
            raise LayoutViolation(f"{path}: include/ is not deployed with Airflow ({_FIX})")

    def _airflow_side_frame(self, frame) -> str | None:
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename and not filename.startswith("<") and _under(filename, self.airflow_side):
                return f"{filename}:{frame.f_lineno}"
            frame = frame.f_back
        return None

    def _refuse(self, what: str, name: str) -> None:
        self.violations.append(what)
        top = name.split(".")[0]
        raise LayoutViolation(f"No module named {top!r} on Airflow: {what} ({_FIX})", name=name)
