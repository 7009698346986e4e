"""The harness end to end: a DAG run whose deferrable operators really defer, and resume on the sandbox's jobs."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest

from tests.dag_files import load_dag
from tests.local_aws.job_roles import create_test_job_roles

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).parent / "dags" / "sandbox_roundtrip.py"


def test_deferrable_batch_and_training_operators_defer_and_resume(aws, airflow_db, inline_triggers, capfd):
    create_test_job_roles()  # jobs run with their roles' credentials: the roles must exist
    dag = load_dag(DAG_FILE)

    run = dag.test()
    task_log = capfd.readouterr().out

    assert run.state == "success"
    # Both waits went through the triggerer path, and the triggers saw the jobs finish.
    assert [(t.__class__.__name__, e.payload["status"]) for t, e in inline_triggers] == [
        ("BatchJobTrigger", "success"),
        ("SageMakerTrigger", "success"),
    ]
    # BatchOperator(awslogs_enabled=True) printed the job's own lines, read from CloudWatch Logs.
    assert "hello from batch job" in task_log and "GREETING=from-the-dockerfile" in task_log
    s3 = boto3.client("s3")
    assert (
        s3.get_object(Bucket="roundtrip", Key=f"batch/{run.run_id.replace(':', '-')}")["Body"].read()
        == b"done"
    )
    models = s3.list_objects_v2(Bucket="roundtrip", Prefix="models/")["Contents"]
    [artifact] = [o["Key"] for o in models if o["Key"].endswith("output/model.tar.gz")]
    with tarfile.open(
        fileobj=io.BytesIO(s3.get_object(Bucket="roundtrip", Key=artifact)["Body"].read())
    ) as archive:
        assert json.load(archive.extractfile("model.json")) == {"rows": 2, "epochs": 2}
