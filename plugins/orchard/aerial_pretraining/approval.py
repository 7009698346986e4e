"""The human gate before a backbone is registered: what the person is asked, and what their answer does.

The metric gate (promotion.decide_promotion) says whether the new backbone beats the baseline; when it does,
``approve_promotion`` (orchard.operators.approval) asks a person before ``register_model`` runs. A Reject or
a timeout leaves the backbone unregistered: the decision becomes "not promoted" with the person's reason.
"""

from __future__ import annotations

from typing import Any


def request(evaluation: dict[str, Any], params: dict[str, Any], run_id: str) -> dict[str, str]:
    """The approval's subject and Markdown body: the figures a person decides on, and where to look."""
    new, baseline, margin = evaluation["new_mAP"], evaluation["baseline_mAP"], params["promotion_margin"]
    body = "\n".join(
        [
            f"The new backbone of run `{run_id}` passed the metric gate. Register it in model package group "
            f"`{params['model_package_group']}`?",
            "",
            "| | new | baseline |",
            "|---|---|---|",
            f"| test macro mAP | {new:.4f} | {baseline:.4f} |",
            f"| test micro AP | {evaluation['new_micro_AP']:.4f} | {evaluation['baseline_micro_AP']:.4f} |",
            "",
            f"Gain {new - baseline:+.4f} against a required margin of {margin:.4f}.",
            f"Per-class AP of both: `{evaluation['evaluation_uri']}`.",
            "",
            f"**Approve** registers it as Approved in the model registry, naming you. **Reject**, or no answer within "
            f"{params['approval_timeout_hours']} h, registers nothing; the run still reports and ends green.",
        ]
    )
    subject = f"Promote {params['arch']}/{params['patch_size']} backbone: mAP {new:.4f} vs {baseline:.4f}?"
    return {"subject": subject, "body": body}


def decided(decision: dict[str, Any], outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The gate's decision after the person's answer: a Reject or a timeout turns "promoted" into "not
    promoted" with why; an approval adds who approved; none asked (approval off, or the gate said no) leaves
    it as it is."""
    if not decision["promoted"] or not outcome or not outcome.get("required"):
        return decision
    if outcome["approved"]:
        return {**decision, "reason": f"{decision['reason']}; {outcome['note']}"}
    return {**decision, "promoted": False, "reason": outcome["note"], "metric_gate": decision["reason"]}


def outcome(
    evaluation: dict[str, Any],
    params: dict[str, Any],
    registered: dict[str, Any] | None,
    skipped: dict[str, Any] | None,
    approval: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run's promotion outcome for its report: the branch that ran (register_model or not_promoted)
    returns it; when a person rejected (or the wait timed out) neither ran, and the gate's decision stands,
    turned into "not promoted" by `decided`."""
    from orchard.aerial_pretraining.promotion import gate_decision

    return decided(registered or skipped or gate_decision(evaluation, params), approval)
