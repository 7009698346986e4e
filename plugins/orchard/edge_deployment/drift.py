"""Drift of what edge devices saw and predicted, against the reference captured at packaging time.

Inputs: the devices' capture objects (JSON Lines, one record per inference: the input frame and the
output scores; include/edge_agent/capture.py) and the package's reference.json (the brightness histogram
and predicted-class counts of the calibration images; include/edge_compiler/reference.py).
Per device: the population stability index (PSI) of the input brightness and of the predicted class
distribution. PSI < 0.1: stable; 0.1-0.25: moderate shift; > 0.25: drift (the usual reading).
numpy is imported inside the functions: DAG files import this module's callers at parse time.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from typing import Any

DRIFT_PSI = 0.25
SHIFT_PSI = 0.1


def psi(expected: list[float], actual: list[float], floor: float = 1e-4) -> float:
    import numpy as np

    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.clip(e / max(e.sum(), 1), floor, None)
    a = np.clip(a / max(a.sum(), 1), floor, None)
    return float(((a - e) * np.log(a / e)).sum())


def verdict(value: float) -> str:
    return "drift" if value > DRIFT_PSI else "shift" if value > SHIFT_PSI else "stable"


def parse_records(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for chunk in lines for line in chunk.splitlines() if line.strip()]


def summarise(records: list[dict[str, Any]], reference: dict[str, Any]) -> dict[str, Any]:
    """Per device: count, brightness histogram and class counts (same bins as the reference), PSIs."""
    import numpy as np

    edges = np.asarray(reference["inputs"]["bin_edges"])
    classes = int(reference["predictions"]["classes"])
    by_device: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_device[record["device"]].append(record)
    devices = {}
    for device, items in sorted(by_device.items()):
        brightness = np.array([_tensor(r["input"]).astype(float).mean() / 255.0 for r in items])
        top1 = np.array([int(_tensor(r["output"]).argmax()) for r in items])
        histogram, _ = np.histogram(np.clip(brightness, 0, 1), bins=edges)
        class_counts = np.bincount(top1, minlength=classes)
        input_psi = psi(reference["inputs"]["counts"], histogram.tolist())
        prediction_psi = psi(reference["predictions"]["counts"], class_counts.tolist())
        devices[device] = {
            "records": len(items),
            "brightness_mean": round(float(brightness.mean()), 4),
            "brightness_counts": histogram.tolist(),
            "class_counts": class_counts.tolist(),
            "input_psi": round(input_psi, 4),
            "prediction_psi": round(prediction_psi, 4),
            "input_drift": verdict(input_psi),
            "prediction_drift": verdict(prediction_psi),
        }
    return {
        "reference_mean_brightness": reference["inputs"]["mean"],
        "devices": devices,
        "thresholds": {"shift": SHIFT_PSI, "drift": DRIFT_PSI},
    }


def _tensor(encoded: dict[str, Any]):
    import numpy as np

    return np.frombuffer(base64.b64decode(encoded["data"]), dtype=encoded["dtype"]).reshape(encoded["shape"])


def figures(
    summary: dict[str, Any], reference: dict[str, Any], class_names: list[str] | None = None
) -> dict[str, Any]:
    """Two figures: input brightness per device vs reference, predicted classes per device vs reference."""
    import numpy as np

    from orchard.reports import new_figure

    edges = np.asarray(reference["inputs"]["bin_edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    brightness = new_figure(figsize=(7, 3.5))
    ax = brightness.add_subplot()
    ax.plot(centres, _share(reference["inputs"]["counts"]), "k--", label="reference (packaging)")
    for device, stats in summary["devices"].items():
        ax.plot(centres, _share(stats["brightness_counts"]), label=f"{device} (PSI {stats['input_psi']:.2f})")
    ax.set_xlabel("mean pixel brightness")
    ax.set_ylabel("share of inputs")
    ax.legend(fontsize=7)
    classes = new_figure(figsize=(7, 3.5))
    ax = classes.add_subplot()
    names = class_names or [str(i) for i in range(int(reference["predictions"]["classes"]))]
    series = {"reference": reference["predictions"]["counts"]} | {
        d: s["class_counts"] for d, s in summary["devices"].items()
    }
    width = 0.8 / len(series)
    for offset, (label, counts) in enumerate(series.items()):
        ax.bar(np.arange(len(names)) + offset * width, _share(counts), width, label=label)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    ax.set_ylabel("share of predictions")
    ax.legend(fontsize=7)
    return {"input_drift": brightness, "prediction_drift": classes}


def _share(counts: list[int]) -> list[float]:
    total = max(sum(counts), 1)
    return [c / total for c in counts]
