"""Load a DAG file the way the DAG processor does, outside any bundle: for tests that run or inspect one DAG."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_dag_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{path.stem}_dag_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(path: Path):
    """The DAG a pipeline file defines: its @dag function is named after the file (the dag_id)."""
    return getattr(load_dag_module(path), path.stem)()
