"""The run report and what the run announces: the root cause first, drift over threshold as attention."""

from __future__ import annotations

import json

import boto3
import pytest

from orchard.edge_deployment.report import announcement, publish_report
from orchard.run_results import FailureCauses
from tests.plugins.edge_deployment.samples import RUN

FAILED_AT_VALIDATION = FailureCauses(failed=("validate_model",), not_run=("prepare", "compile", "package"))


def test_attention_names_the_failed_task_and_the_drifting_device_not_the_tasks_that_did_not_run():
    drift = {
        "devices": {
            "camera-1": {"input_psi": 0.02, "input_drift": None, "prediction_psi": 0.01},
            "camera-2": {"input_psi": 17.4, "input_drift": "drift", "prediction_psi": 0.01},
        }
    }

    assert announcement({"drift": drift}, FAILED_AT_VALIDATION) == {
        "attention": ["camera-2: drift over threshold (input PSI 17.4)", "failed at validate_model"]
    }
    assert announcement({}, FailureCauses()) == {"attention": []}


def test_a_run_that_failed_at_validation_gets_a_report_that_says_so_first(aws, sessions_built):
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=settings.reports_bucket)

    uri = publish_report("edge_deployment", RUN, {}, None, FAILED_AT_VALIDATION).uri

    bucket, key = uri.removeprefix("s3://").split("/", 1)
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "**FAILED** at validate_model (not run, upstream failed: prepare, compile, package)" in text
    assert text.index("**FAILED**") < text.index("No package was published")
    assert len(sessions_built) == 1  # S3 and SageMaker (the prepare job's cost) on one session


def test_the_per_request_cost_uses_orchard_pricing():
    from orchard.edge_deployment.report import _add_links_and_cost
    from orchard.pricing import PRICES_AS_OF, unit_price
    from orchard.reports import Report

    report = Report("edge", "edge_deployment", RUN)
    devices = [{"thing_name": f"cam-{n}", "secret_name": f"s-{n}"} for n in (1, 2)]
    deployment = {"job_id": "j", "outcomes": [{}, {}, {}]}
    _add_links_and_cost(report, "us-east-1", None, {"devices": devices}, deployment)

    expected = (
        3 * unit_price("iot_job_execution")
        + 2 * unit_price("secretsmanager_secret_month") / 730
        + 3 * unit_price("kms_asymmetric_request")
    )
    assert report.cost_usd == pytest.approx(expected, abs=1e-6)
    text = report.to_markdown()
    assert "3 × $0.0036" in text and f"list prices (us-east-1) as of {PRICES_AS_OF}" in text


DRIFT = {
    "summary": {
        "devices": {
            "camera-1": {"brightness_counts": [3, 5, 2], "class_counts": [4, 6], "input_psi": 0.02},
            "camera-2": {"brightness_counts": [1, 2, 7], "class_counts": [9, 1], "input_psi": 0.4},
        }
    },
    "reference": {
        "inputs": {"bin_edges": [0.0, 0.33, 0.66, 1.0], "counts": [3, 4, 3]},
        "predictions": {"classes": 2, "counts": [5, 5]},
    },
}


def test_the_report_reads_at_once_and_announces_what_it_published_without_reading_it_back(
    aws, sessions_built, api_calls
):
    """The drift.json read and the prepare job's describe are independent: they wait here for each other,
    which one after the other never happens. The run's summary takes the metrics and cost the report
    published (those of report.json) from the task's hands: one session, no GetObject of report.json."""
    from orchard.run_results import announce
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    s3 = boto3.client("s3")
    for bucket in (settings.reports_bucket, settings.artifacts_bucket):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=settings.artifacts_bucket, Key="monitor/drift.json", Body=json.dumps(DRIFT))
    compact = {
        d: {"records": 10, "brightness_mean": 0.5, "input_psi": v["input_psi"], "input_drift": "stable"}
        | {"prediction_psi": 0.01, "prediction_drift": "stable"}
        for d, v in DRIFT["summary"]["devices"].items()
    }
    drift = {"drift_uri": f"s3://{settings.artifacts_bucket}/monitor/drift.json", "devices": compact}
    sessions_built.clear()
    api_calls.clear()
    api_calls.meet({"GetObject", "DescribeProcessingJob"}, 2)

    published = publish_report("edge_deployment", RUN, {"drift": drift}, None, FailureCauses())
    summary = announce(_TaskInstance(), published.uri, published.metrics, cost_usd=published.cost_usd)
    reads = [name for name, _ in api_calls if name == "GetObject"]

    bucket, key = published.uri.removeprefix("s3://").split("/", 1)
    stored = json.loads(
        s3.get_object(Bucket=bucket, Key=key.replace("report.md", "report.json"))["Body"].read()
    )
    assert summary["metrics"] == stored["metrics"] == {"camera-1 input PSI": 0.02, "camera-2 input PSI": 0.4}
    assert summary["cost_usd"] == stored["cost_usd"]
    assert stored["figures"] == ["figures/input_drift.png", "figures/prediction_drift.png"]
    assert len(sessions_built) == 1
    assert reads == ["GetObject"]  # drift.json only


class _TaskInstance:
    def xcom_push(self, key, value):
        self.pushed = {key: value}
