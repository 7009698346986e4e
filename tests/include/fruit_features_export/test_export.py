"""The ONNX export matches the torch model it came from; runs in the export job's own environment."""

from __future__ import annotations

import json

CHECK = """
import json, sys, numpy as np, torch, onnxruntime as ort
sys.path.insert(0, ".")
import export
model, _ = export.build("efficientnet_lite0")
images = np.random.default_rng(7).integers(0, 256, (3, 224, 224, 3), np.uint8)
with torch.no_grad():
    expected = model(torch.from_numpy(images)).numpy()
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
actual = session.run(["features"], {"images": images})[0]
meta = session.get_modelmeta().custom_metadata_map
print(json.dumps({"shape": list(actual.shape), "max_abs_diff": float(np.abs(expected - actual).max()),
                  "model": meta["model"], "feature_dim": meta["feature_dim"]}))
"""


def test_onnx_export_matches_torch(tmp_path, run_job_python):
    result = run_job_python("fruit_features_export", "export.py", "--model", "efficientnet_lite0",
                            "--output", str(tmp_path), "--check-images", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((tmp_path / "model.json").read_text())
    assert recorded["model"] == "efficientnet_lite0" and recorded["feature_dim"] == 1280
    assert recorded["max_abs_diff"] < 1e-4

    # Independently of the export's own check: fresh images, torch vs ONNX Runtime, max abs diff.
    check = run_job_python("fruit_features_export", "-c", CHECK, str(tmp_path / "model.onnx"))
    assert check.returncode == 0, check.stderr[-3000:]
    compared = json.loads(check.stdout.strip().splitlines()[-1])
    assert compared == {"shape": [3, 1280], "max_abs_diff": compared["max_abs_diff"], "model": "efficientnet_lite0",
                        "feature_dim": "1280"}
    assert compared["max_abs_diff"] < 1e-4


def test_an_unknown_model_is_refused(tmp_path, run_job_python):
    result = run_job_python("fruit_features_export", "export.py", "--model", "resnet50", "--output", str(tmp_path))
    assert result.returncode != 0 and "invalid choice: 'resnet50'" in result.stderr
