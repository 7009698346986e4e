"""The ONNX export matches the torch model it came from; runs in the export job's own environment."""

from __future__ import annotations

import json

# Export with the job's own entry point, then compare torch and ONNX Runtime on fresh images, independently
# of the check the export itself records (one process: torch loads once).
EXPORT_AND_COMPARE = """
import json, sys
import numpy as np, onnxruntime as ort, torch
import export
assert export.main(["--model", "efficientnet_lite0", "--output", sys.argv[1], "--check-images", "2"]) == 0
model, _ = export.build("efficientnet_lite0")
images = np.random.default_rng(7).integers(0, 256, (3, 224, 224, 3), np.uint8)
with torch.no_grad():
    expected = model(torch.from_numpy(images)).numpy()
session = ort.InferenceSession(sys.argv[1] + "/model.onnx", providers=["CPUExecutionProvider"])
actual = session.run(["features"], {"images": images})[0]
meta = session.get_modelmeta().custom_metadata_map
print(json.dumps({"shape": list(actual.shape), "max_abs_diff": float(np.abs(expected - actual).max()),
                  "model": meta["model"], "feature_dim": meta["feature_dim"]}))
"""


def test_onnx_export_matches_torch(tmp_path, run_job_python):
    result = run_job_python("fruit_features_export", "-c", EXPORT_AND_COMPARE, str(tmp_path))

    assert result.returncode == 0, result.stderr[-3000:]
    compared = json.loads(result.stdout.strip().splitlines()[-1])
    assert compared["shape"] == [3, 1280] and compared["max_abs_diff"] < 1e-4
    assert compared["model"] == "efficientnet_lite0" and compared["feature_dim"] == "1280"
    recorded = json.loads((tmp_path / "model.json").read_text())  # what the DAG's model_ready task reads
    assert recorded["model"] == "efficientnet_lite0" and recorded["max_abs_diff"] < 1e-4


def test_an_unknown_model_is_refused(tmp_path, run_job_python):
    result = run_job_python(
        "fruit_features_export", "export.py", "--model", "resnet50", "--output", str(tmp_path)
    )
    assert result.returncode != 0 and "invalid choice: 'resnet50'" in result.stderr
