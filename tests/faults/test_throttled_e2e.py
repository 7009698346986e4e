"""Every pipeline's e2e happy path (its own test, unchanged) with 30 % of the calls of every service the
pipeline calls — Batch and EMR included — answered with that service's throttling error
(local_aws/faults.py). The run must still succeed: every client Airflow uses retries throttling."""

from __future__ import annotations

import functools
import os
import time

import pytest

from tests.e2e import test_aerial_pretraining as aerial
from tests.e2e import test_auto_labeling as labeling
from tests.e2e import test_edge_deployment as edge
from tests.e2e import test_fruit_features as fruit
from tests.e2e import test_pose_training as pose
from tests.e2e.test_aerial_pretraining import demo  # noqa: F401  (the e2e tests' fixtures)
from tests.e2e.test_auto_labeling import dag  # noqa: F401
from tests.e2e.test_edge_deployment import buckets  # noqa: F401
from tests.e2e.test_fruit_features import fruit_photos  # noqa: F401
from tests.e2e.test_pose_training import pose_dag  # noqa: F401
from tests.faults import matrix
from tests.faults.sandbox_faults import clear_faults, fault_report, set_faults

THROTTLE = float(os.environ.get("ORCHARD_FAULTS_THROTTLE", "0.3"))
SEED = int(os.environ.get("ORCHARD_FAULTS_SEED", "1"))
# CI's sample: the cheapest pipeline's throttled e2e (docs/sandbox.md, "Fault injection").
CI_PIPELINE = os.environ.get("ORCHARD_FAULTS_CI_THROTTLED", "auto_labeling")  # the cheapest: ~1.5 min


def throttled(dag_id: str, e2e_test):
    """`e2e_test` under throttling, as a test of this module (its fixtures resolve here)."""

    @functools.wraps(e2e_test)
    def test(*args, **kwargs):
        return e2e_test(*args, **kwargs)

    test.__name__ = f"test_{dag_id}_throttled"
    marks = [pytest.mark.faults, pytest.mark.pipeline_under_faults.with_args(dag_id)]
    if dag_id == CI_PIPELINE:
        marks.append(pytest.mark.faults_ci)
    for mark in marks:
        test = mark(test)
    return test


@pytest.fixture(autouse=True)
def throttling(request, aws, pipeline_role_for):  # noqa: F811
    """The pipeline's role (as tests/e2e/conftest.py gives it), then THROTTLE on every service."""
    [dag_id] = request.node.get_closest_marker("pipeline_under_faults").args
    pipeline_role_for(dag_id)
    set_faults(aws.url, {"seed": SEED, "throttle": THROTTLE})
    record = {"test": dag_id, "outcome": "error", "services": "", "seconds": 0.0}
    matrix.THROTTLED.append(record)
    started = time.monotonic()
    yield
    report = fault_report(aws.url)
    clear_faults(aws.url)
    seen, thrown = {}, {}
    for row in report["seen"]:
        seen[row["service"]] = seen.get(row["service"], 0) + row["count"]
    for row in report["injected"]:
        thrown[row["service"]] = thrown.get(row["service"], 0) + row["count"]
    record["services"] = ", ".join(f"{s} {thrown.get(s, 0)}/{n}" for s, n in sorted(seen.items()))
    record["seconds"] = time.monotonic() - started
    outcome = getattr(request.node, "rep_call", None)
    record["outcome"] = "passed" if outcome is not None and outcome.passed else "**failed**"
    matrix.record("throttled", record)
    assert sum(thrown.values()) > 0, f"no call was throttled: {report}"


test_auto_labeling_throttled = throttled(
    "auto_labeling", labeling.test_frames_are_prelabeled_verified_and_every_resource_removed
)
test_edge_deployment_throttled = throttled("edge_deployment", edge.test_edge_deployment_on_its_defaults)
test_aerial_pretraining_throttled = throttled("aerial_pretraining", aerial.test_promoted_when_the_gate_passes)
test_fruit_features_throttled = throttled(
    "fruit_features", fruit.test_the_dags_own_defaults_run_through_the_sandbox
)
test_pose_training_throttled = throttled(
    "pose_training",
    pose.test_uploaded_project_trains_on_the_dags_defaults_and_its_model_metrics_and_report_land_in_s3,
)
