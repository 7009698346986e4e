"""Models by name on the device: several live together, one can be unloaded, predictions come from TVM."""

from __future__ import annotations

import json
import subprocess

from local_aws.demo_data import edge_deployment as demo
from tests.include.conftest import INCLUDE, job_env_python

DRIVER = """
import json, sys
from pathlib import Path
import numpy as np
from models import ModelManager, ModelError
from agent import to_input

compiled = Path(sys.argv[1])
metadata = json.loads((compiled / "compiled.json").read_text())
manifest = {"name": "demo", "version": "1", "compiled": metadata, "input_shape": metadata["data_input_config"]}
manager = ModelManager()
manager.load("fruit", compiled, manifest, "float32")
manager.load("fruit-int8", compiled, manifest, "int8")
frame = np.load(sorted(Path(sys.argv[2]).glob("*.npy"))[0])
scores = {name: manager.get(name).predict(to_input(frame, [1, 3, 32, 32]))[0].tolist() for name in manager.names()}
manager.unload("fruit-int8")
try:
    manager.get("fruit-int8")
    gone = False
except ModelError:
    gone = True
print(json.dumps({"names": manager.names(), "scores": scores, "gone": gone}))
"""


def test_several_models_load_by_name_predict_and_unload(tmp_path):
    out = demo.generate(tmp_path, per_device=1, calibration=8)
    options = {"orchard_quantization": "int8", "orchard_calibration_uri": str(out / "images" / "calibration")}
    subprocess.run([str(job_env_python("edge_compiler")), "compile.py", "--model", str(out / "model.tar.gz"),
                    "--framework", "ONNX", "--data-input-config", '{"data": [1, 3, 32, 32]}',
                    "--target", '{"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}', "--output-dir",
                    str(out / "compiled"), "--compiler-options", json.dumps(options)],
                   cwd=INCLUDE / "edge_compiler", check=True, capture_output=True)
    result = subprocess.run([str(job_env_python("edge_agent")), "-c", DRIVER, str(out / "compiled"), str(out / "images" / "0")],
                            cwd=INCLUDE / "edge_agent", capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["names"] == ["fruit"] and answer["gone"]
    for scores in answer["scores"].values():
        assert len(scores) == 4 and abs(sum(scores) - 1.0) < 0.05  # softmax over the four fruit classes
