"""The monitor's drift measure: PSI of input brightness and predicted classes against the reference."""

from __future__ import annotations

import base64

import numpy as np

from orchard.edge_deployment.drift import figures, psi, summarise, verdict


def record(device: str, brightness: int, top1: int) -> dict:
    frame = np.full((4, 4, 3), brightness, np.uint8)
    scores = np.eye(3, dtype=np.float32)[top1]

    def encode(a):
        return {"dtype": str(a.dtype), "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}

    return {"device": device, "model": "m", "input": encode(frame), "output": encode(scores)}


def reference() -> dict:
    edges = np.linspace(0, 1, 11).tolist()
    counts = [0, 0, 0, 5, 10, 5, 0, 0, 0, 0]  # mid-grey scenes
    return {
        "inputs": {"bin_edges": edges, "counts": counts, "mean": 0.45},
        "predictions": {"classes": 3, "counts": [10, 5, 5]},
    }


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    assert psi([10, 20, 30], [1, 2, 3]) < 1e-9
    assert psi([10, 20, 30], [30, 20, 10]) > 0.25
    assert [verdict(v) for v in (0.05, 0.2, 0.5)] == ["stable", "shift", "drift"]


def test_a_brighter_camera_drifts_and_a_matching_one_does_not():
    same = [
        (90, 0),
        (95, 1),
        (105, 0),
        (110, 2),
        (115, 0),
        (120, 1),
        (140, 0),
        (145, 2),
    ]  # the reference's 1:2:1
    records = [record("same", b, t) for b, t in same]
    records += [record("bright", 240, 0) for _ in range(6)]
    summary = summarise(records, reference())
    assert summary["devices"]["same"]["input_drift"] == "stable"
    assert summary["devices"]["bright"]["input_drift"] == "drift"
    assert summary["devices"]["bright"]["brightness_counts"][-1] == 6
    assert set(figures(summary, reference())) == {"input_drift", "prediction_drift"}
