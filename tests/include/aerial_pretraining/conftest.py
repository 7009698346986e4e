"""Fixtures for the aerial_pretraining job code: its own environment, generated BigEarthNet-format data.

include/aerial_pretraining/Dockerfile (the prepare job's image) installs torch, numpy and the code's
requirements.txt, which the training jobs install on top of the PyTorch image; these tests use that image.
Torch runs single-threaded: on a shared 2-core machine, oversubscribed threads make it many times slower.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from local_aws import dockerfiles
from local_aws.environments import ensure_env

JOB_CODE = Path(__file__).resolve().parents[3] / "include" / "aerial_pretraining"
SKLEARN_REQUIREMENTS = "numpy==2.4.6\nscikit-learn==1.9.1\n"


def _python(requirements: str, label: str) -> Path:
    return ensure_env(requirements, label=label, log=lambda line: None) / "python"


def run_snippet(
    python: Path, code: str, *, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `code` with the job folder importable; its last stdout line may be JSON (see `result`)."""
    env = {**os.environ, "PYTHONPATH": str(JOB_CODE), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        cwd=JOB_CODE,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"job code failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return done


def result(done: subprocess.CompletedProcess) -> object:
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def job() -> Callable[..., subprocess.CompletedProcess]:
    python = dockerfiles.build(JOB_CODE, "aerial-pretraining", log=lambda line: None).bin_dir / "python"
    return lambda code, **kwargs: run_snippet(python, code, **kwargs)


@pytest.fixture(scope="session")
def sklearn_job() -> Callable[..., subprocess.CompletedProcess]:
    """numpy + scikit-learn only: the reference for metrics.py (which needs numpy alone)."""
    python = _python(SKLEARN_REQUIREMENTS, "aerial-pretraining-sklearn")
    return lambda code, **kwargs: run_snippet(python, code, **kwargs)


@pytest.fixture(scope="session")
def raw_dataset(tmp_path_factory) -> Path:
    """A toy BigEarthNet-S2 archive (60 patches + snow, cloud and label-less ones), shared read-only."""
    from local_aws.demo_data.aerial_pretraining import generate

    root = tmp_path_factory.mktemp("bigearthnet") / "raw"
    generate(root, patches=60)
    return root


@pytest.fixture(scope="session")
def prepared_dataset(job, raw_dataset, tmp_path_factory) -> Path:
    """prepare_dataset.py's output for `raw_dataset`: metadata/final_ben_s2.parquet, rgb/*.tif, summary.json."""
    out = tmp_path_factory.mktemp("prepared")
    job(
        f"import prepare_dataset; prepare_dataset.main(['--input_dir', '{raw_dataset}', '--output_dir', '{out}'])"
    )
    return out


def copy_raw(raw: Path, target: Path) -> Path:
    """A private copy of the archive a test may break."""
    import shutil

    shutil.copytree(raw, target)
    return target
