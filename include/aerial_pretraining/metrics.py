"""Mean average precision for multi-label classification, numpy only (same definition as scikit-learn).

AP of one class = sum over distinct score thresholds (high to low) of (R_n - R_{n-1}) * P_n: the step-wise
area under the precision-recall curve, without interpolation; tied scores form a single threshold.
"""

from __future__ import annotations

import numpy as np


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AP of one binary problem; NaN when there is no positive (undefined, left out of the macro mean)."""
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if y_true.shape != scores.shape:
        raise ValueError(f"labels and scores differ in shape: {y_true.shape} vs {scores.shape}")
    positives = y_true.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    y_sorted, s_sorted = y_true[order], scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]
    true_pos = np.cumsum(y_sorted)[last_of_tie]
    predicted = last_of_tie + 1
    precision = true_pos / predicted
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def map_scores(y_true: np.ndarray, scores: np.ndarray, label_names: list[str] | tuple[str, ...]) -> dict:
    """Macro mAP (mean over classes with a positive), micro AP (all decisions pooled) and per-class AP."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.ndim != 2 or y_true.shape != scores.shape or y_true.shape[1] != len(label_names):
        raise ValueError(
            f"expected (n, {len(label_names)}) labels and scores, got {y_true.shape} and {scores.shape}"
        )
    per_class = [average_precision(y_true[:, k], scores[:, k]) for k in range(y_true.shape[1])]
    defined = [ap for ap in per_class if not np.isnan(ap)]
    return {
        "macro_mAP": float(np.mean(defined)) if defined else float("nan"),
        "micro_AP": average_precision(y_true.ravel(), scores.ravel()),
        "per_class_AP": {
            name: (None if np.isnan(ap) else ap) for name, ap in zip(label_names, per_class, strict=True)
        },
        "classes_without_positives": [
            name for name, ap in zip(label_names, per_class, strict=True) if np.isnan(ap)
        ],
        "samples": int(y_true.shape[0]),
    }
