"""The distributions a fleet's monitor compares captured data with: input brightness and predicted class.

Stored with the package as reference.json; the bin edges travel with it so that the monitor bins the
devices' captured inputs exactly as the reference was binned.
"""

from __future__ import annotations

import numpy as np

BRIGHTNESS_BINS = 20


def input_summary(images: np.ndarray) -> dict:
    """images: float batch N x C x H x W in [0, 1]."""
    brightness = images.reshape(len(images), -1).mean(axis=1)
    edges = np.linspace(0.0, 1.0, BRIGHTNESS_BINS + 1)
    counts, _ = np.histogram(np.clip(brightness, 0, 1), bins=edges)
    return {
        "feature": "mean pixel brightness",
        "bin_edges": edges.round(6).tolist(),
        "counts": counts.tolist(),
        "mean": float(brightness.mean()),
        "std": float(brightness.std()),
    }


def prediction_summary(top1: np.ndarray, classes: int) -> dict:
    counts = np.bincount(top1, minlength=classes)
    return {"classes": int(classes), "counts": counts.tolist()}
