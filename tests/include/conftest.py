"""Job code runs in its image's own environment, never Airflow's: tests of include/ code do the same.

`job_python("fruit_features")` builds (first use, then cached) the venv of
`include/fruit_features/requirements.txt` exactly as the sandbox does for the image, and returns its
python. Tests run the job's scripts (or a small test driver) with it in a subprocess.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from local_aws.environments import ensure_env

INCLUDE = Path(__file__).resolve().parents[2] / "include"


def job_env_python(folder_name: str) -> Path:
    folder = INCLUDE / folder_name
    requirements = folder / "requirements.txt"
    text = requirements.read_text() if requirements.exists() else ""
    return ensure_env(text, label=folder_name.replace("_", "-"), log=lambda line: None) / "python"


@pytest.fixture(scope="session")
def job_python() -> Callable[[str], Path]:
    return job_env_python


@pytest.fixture(scope="session")
def run_job_python() -> Callable[..., subprocess.CompletedProcess]:
    """Run `python <args>` in a job folder's environment with the folder as cwd; output captured."""

    def run(folder_name: str, *args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
        python = job_env_python(folder_name)
        return subprocess.run(
            [str(python), *args],
            cwd=INCLUDE / folder_name,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    return run
