"""A sandbox of a benchmark's own: `python -m local_aws serve` on a free port, this process's AWS clients
pointed at it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_sandbox(latency_ms: int) -> tuple[subprocess.Popen, str]:
    """Start it with `latency_ms` of added API latency; return its process and URL once it answers."""
    from local_aws import client_env
    from local_aws.server import is_up
    from local_aws.stack import pick_port

    port = pick_port(0)
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ORCHARD_SANDBOX_LATENCY_MS": str(latency_ms), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not is_up(url):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.1)
    os.environ.update(client_env(url))
    return process, url


def seeded_sandbox(
    latency_ms: int, dag_id: str, upload, job_code: bool = True
) -> tuple[subprocess.Popen, dict]:
    """A sandbox as `make demo` prepares it for one pipeline: its buckets, the deployed job code (`job_code`),
    the demo data `upload(s3, settings)` puts there (returning the run's conf) and the pipeline's roles.
    Returns its process and {url, settings, s3, params (the DAG's defaults + that conf), env}: env is what a
    task process of that pipeline gets on the local stack (its connection assumes the DAG's role; settings
    from the environment, not Airflow Variables)."""
    import boto3

    from deploy.job_code import deploy
    from local_aws import aws_connection
    from local_aws.iam_setup import create_pipeline_roles
    from orchard.settings import load_settings
    from tests.dag_files import load_dag

    process, url = start_sandbox(latency_ms)
    settings = load_settings(variables=False)
    s3 = boto3.client("s3")
    for bucket in {settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket}:
        s3.create_bucket(Bucket=bucket)
    if job_code:
        deploy(bucket=settings.artifacts_bucket, image_tag=settings.image_tag, s3=s3)
    params = {**load_dag(REPO / "dags" / f"{dag_id}.py").params.dump(), **upload(s3, settings)}
    env = {
        **os.environ,
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(url, role_arn=create_pipeline_roles(url, [dag_id])),
        "AIRFLOW__AWS__SESSION_FACTORY": "orchard.aws_session.SharedLoaderSessionFactory",
        "ORCHARD_USE_AIRFLOW_VARIABLES": "0",
    }
    return process, {"url": url, "settings": settings, "s3": s3, "params": params, "env": env}
