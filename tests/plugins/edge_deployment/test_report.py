"""The run report and what the run announces: the root cause first, drift over threshold as attention."""

from __future__ import annotations

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

    uri = publish_report("edge_deployment", RUN, {}, None, FAILED_AT_VALIDATION)

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
