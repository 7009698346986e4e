"""The pipelines' human gates: what aerial_pretraining and edge_deployment ask a person, and what the answer
does to the promotion decision, the edge cleanup and report."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchard.aerial_pretraining import approval as promotion_approval
from orchard.aerial_pretraining.promotion import decide_promotion
from orchard.edge_deployment import approval as rollout_approval
from orchard.operators.approval import OptionalApprovalOperator
from tests.dag_files import load_dag

REPO_ROOT = Path(__file__).resolve().parents[2]

EVALUATION = {
    "evaluation_uri": "s3://orchard-artifacts/aerial_pretraining/run/evaluation.json",
    "new_mAP": 0.7321,
    "baseline_mAP": 0.6853,
    "new_micro_AP": 0.81,
    "baseline_micro_AP": 0.77,
}
AERIAL_PARAMS = {
    "promotion_margin": 0.01,
    "model_package_group": "aerial-dino-vit",
    "approval_timeout_hours": 24,
    "arch": "vit_small",
    "patch_size": 16,
}
REJECTED = {
    "approved": False,
    "required": True,
    "timed_out": False,
    "by": "alice",
    "at": "2026-12-07T03:00:00+00:00",
    "note": "rejected by alice",
}
TIMED_OUT = {
    "approved": False,
    "required": True,
    "timed_out": True,
    "by": None,
    "at": "2026-12-08T03:00:00+00:00",
    "note": "approval timed out after 24 h (default: Reject)",
}
APPROVED = {
    "approved": True,
    "required": True,
    "timed_out": False,
    "by": "alice",
    "at": "2026-12-07T03:00:00+00:00",
    "note": "approved by alice",
}


def test_aerial_request_gives_the_figures_to_decide_on():
    asked = promotion_approval.request(EVALUATION, AERIAL_PARAMS, "manual__1")
    assert asked["subject"] == "Promote vit_small/16 backbone: mAP 0.7321 vs 0.6853?"
    body = asked["body"]
    assert "| test macro mAP | 0.7321 | 0.6853 |" in body
    assert "Gain +0.0468 against a required margin of 0.0100" in body
    assert EVALUATION["evaluation_uri"] in body and "`aerial-dino-vit`" in body
    assert "no answer within 24 h, registers nothing" in body


def test_aerial_reject_or_timeout_means_not_promoted_with_why():
    gate = decide_promotion(0.7321, 0.6853, 0.01)
    assert gate["promoted"]
    rejected = promotion_approval.decided(gate, REJECTED)
    assert rejected["promoted"] is False and rejected["reason"] == "rejected by alice"
    assert rejected["metric_gate"] == gate["reason"]  # what the metric gate said is kept
    assert promotion_approval.decided(gate, TIMED_OUT)["reason"].startswith("approval timed out")


def test_aerial_approval_names_who_and_no_approval_leaves_the_gate_decision():
    gate = decide_promotion(0.7321, 0.6853, 0.01)
    approved = promotion_approval.decided(gate, APPROVED)
    assert approved == {
        **gate,
        "reason": f"{gate['reason']}; approved by alice",
    }  # who approved, in the report
    not_required = {
        **APPROVED,
        "required": False,
        "by": None,
        "at": None,
        "note": "approval not required: off",
    }
    assert promotion_approval.decided(gate, not_required) == gate
    failed_gate = decide_promotion(0.60, 0.6853, 0.01)
    assert promotion_approval.decided(failed_gate, None) == failed_gate  # the approval never ran


FLEET = {
    "fleet_name": "orchard-line-3",
    "thing_group_arn": "arn:aws:iot:us-east-1:123456789012:thinggroup/orchard-line-3",
    "devices": [{"thing_name": "cam-1"}, {"thing_name": "cam-2"}, {"thing_name": "cam-3"}],
}
PACKAGE = {
    "package_uri": "s3://orchard-artifacts/edge_deployment/packages/fruit-colour/1.0.0/package.tar.gz",
    "sha256": "ab" * 32,
    "size_bytes": 123456,
}
EDGE_PARAMS = {
    "model_name": "fruit-colour",
    "model_version": "1.0.0",
    "framework": "ONNX",
    "target_device": "jetson_nano",
    "quantization": "int8",
    "max_devices_per_minute": 100,
    "rollout_window_minutes": 60,
    "min_success_percent": 100,
    "abort_failure_percent": 50,
    "approval_timeout_hours": 24,
}


def test_edge_request_names_model_package_fleet_and_device_count():
    asked = rollout_approval.request(PACKAGE, FLEET, EDGE_PARAMS)
    assert asked["subject"] == "Deploy fruit-colour 1.0.0 to orchard-line-3 (3 devices)?"
    body = asked["body"]
    assert PACKAGE["package_uri"] in body and "123,456 bytes" in body
    assert FLEET["thing_group_arn"] in body
    assert "Devices (3): cam-1, cam-2, cam-3" in body
    assert "compiled for `jetson_nano`" in body


def test_edge_refused_rollout_cleans_up_and_says_why():
    assert rollout_approval.refused(REJECTED) == ["approve_rollout (rejected by alice)"]
    assert rollout_approval.attention(TIMED_OUT) == [
        "not deployed: approval timed out after 24 h (default: Reject)"
    ]
    assert "**Not deployed**: rejected by alice" in rollout_approval.report_text(REJECTED)


def test_edge_approved_rollout_says_who():
    assert rollout_approval.refused(APPROVED) == [] and rollout_approval.attention(None) == []
    assert rollout_approval.report_text(APPROVED) == "## Rollout approval\n\nApproved by alice."
    assert rollout_approval.report_text(None) is None


@pytest.mark.parametrize(
    ("dag_file", "approval_task", "gated", "still_run"),
    [
        ("aerial_pretraining", "approve_promotion", ["register_model"], ["publish_report"]),
        ("edge_deployment", "approve_rollout", ["deploy"], ["cleanup", "report", "sweep_leftovers"]),
    ],
)
def test_a_reject_skips_only_the_gated_step_the_report_and_cleanup_still_run(
    dag_file, approval_task, gated, still_run
):
    dag = load_dag(REPO_ROOT / "dags" / f"{dag_file}.py")
    approval = dag.task_dict[approval_task]
    assert [t.task_id for t in OptionalApprovalOperator.gated_tasks(approval)] == gated
    assert set(still_run) <= approval.downstream_task_ids  # they read the outcome (XCom argument)
    params = dag.params
    assert params["require_approval"] is True and params["approval_timeout_hours"] == 24  # production
