"""The Spark job's environments: EMR 7.x's (pyspark 3.5, include/fruit_features/requirements.txt) and pyspark 4.x.

The job must run unchanged on both; the pyspark 4 environment is the same requirements with only the
pyspark pin changed. The EMR 7.x one is built on the release's python3 (3.9, as on the nodes) where this
machine has it (local_aws.environments.python_of_minor), else on the host's Python. Used by the tests and
by benchmarks/fruit_features_throughput.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from local_aws import emr_releases
from local_aws.environments import ensure_env, python_of_minor

JOB_DIR = Path(__file__).resolve().parents[3] / "include" / "fruit_features"
EMR7_RELEASE = emr_releases.lookup("emr-7.5.0")  # the DAG's default release
EMR7_PYSPARK = EMR7_RELEASE.pyspark
PYSPARK_4 = "pyspark==4.0.1"


def spark_bin(pyspark: str = EMR7_PYSPARK) -> Path:
    """bin/ of the job's environment with `pyspark` (built on first use, then cached)."""
    requirements = (JOB_DIR / "requirements.txt").read_text()
    if pyspark == EMR7_PYSPARK:
        python = python_of_minor(EMR7_RELEASE.python)
        return ensure_env(requirements, label="fruit-features", log=lambda line: None, python=python)
    return ensure_env(
        requirements.replace(EMR7_PYSPARK, pyspark), label="fruit-features-pyspark4", log=lambda line: None
    )


def spark_submit(
    bin_dir: Path, model: Path, *job_args: str, master: str = "local[2]", timeout: float = 600
) -> subprocess.CompletedProcess:
    """`spark-submit` of the job as an EMR step runs it: --py-files image_model.py --files model.onnx."""
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYSPARK_PYTHON": str(bin_dir / "python"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    argv = [
        str(bin_dir / "spark-submit"),
        "--master",
        master,
        "--py-files",
        str(JOB_DIR / "image_model.py"),
        "--files",
        str(model),
        str(JOB_DIR / "extract_features.py"),
        *job_args,
    ]
    return subprocess.run(
        argv, cwd=JOB_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
