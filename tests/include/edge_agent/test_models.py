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

def manifest(folder):
    metadata = json.loads((folder / "compiled.json").read_text())
    variant = "int8" if metadata["quantized"] else "float32"
    return {"name": "demo", "version": "1", "variant": variant, "compiled": metadata, "input_shape": metadata["data_input_config"]}

manager = ModelManager()
float_dir, int8_dir = Path(sys.argv[1]), Path(sys.argv[3])
manager.load("fruit", float_dir, manifest(float_dir))
manager.load("fruit-int8", int8_dir, manifest(int8_dir))
variants = {name: manager.get(name).variant for name in manager.names()}
frame = np.load(sorted(Path(sys.argv[2]).glob("*.npy"))[0])
scores = {name: manager.get(name).predict(to_input(frame, [1, 3, 32, 32]))[0].tolist() for name in manager.names()}
manager.unload("fruit-int8")
try:
    manager.get("fruit-int8")
    gone = False
except ModelError:
    gone = True
print(json.dumps({"names": manager.names(), "scores": scores, "gone": gone, "variants": variants}))
"""


def test_several_models_load_by_name_predict_and_unload(tmp_path):
    out = demo.generate(tmp_path, per_device=1, calibration=8)
    float_dir, int8_dir = demo.prepare_and_compile(out, "none"), demo.prepare_and_compile(out, "int8")
    result = subprocess.run([str(job_env_python("edge_agent")), "-c", DRIVER, str(float_dir), str(out / "images" / "0"), str(int8_dir)],
                            cwd=INCLUDE / "edge_agent", capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["names"] == ["fruit"] and answer["gone"]
    assert answer["variants"] == {"fruit": "float32", "fruit-int8": "int8"}
    for scores in answer["scores"].values():
        assert len(scores) == 4 and abs(sum(scores) - 1.0) < 0.05  # softmax over the four fruit classes
