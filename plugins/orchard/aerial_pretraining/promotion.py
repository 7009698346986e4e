"""The promotion gate: register the new backbone only if it beats the baseline by the margin."""

from __future__ import annotations


def decide_promotion(new_map: float, baseline_map: float, margin: float) -> dict:
    """Promote only when the new backbone's macro mAP beats the baseline's by at least `margin`."""
    needed = baseline_map + margin
    promoted = new_map - baseline_map >= margin - 1e-9  # a gain of exactly the margin counts, float noise aside
    verdict = "beats" if promoted else "does not beat"
    return {
        "promoted": promoted,
        "new_mAP": new_map, "baseline_mAP": baseline_map, "margin": margin,
        "reason": f"new mAP {new_map:.4f} {verdict} baseline {baseline_map:.4f} + margin {margin:.4f} = {needed:.4f}",
    }
