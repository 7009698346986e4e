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
    meta = json.loads((folder / "compiled.meta").read_text())
    variant = "int8" if meta["Quantized"] else "float32"
    return {"name": "demo", "version": "1", "variant": variant, "input_shape": {"data": [1, 3, 32, 32]},
            "artifacts": {"layout": "neo-sandbox", "runtime": meta["Runtime"],
                          "files": ["compiled.so", "compiled.meta"]}}

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
    result = subprocess.run(
        [
            str(job_env_python("edge_agent")),
            "-c",
            DRIVER,
            str(float_dir),
            str(out / "images" / "0"),
            str(int8_dir),
        ],
        cwd=INCLUDE / "edge_agent",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["names"] == ["fruit"] and answer["gone"]
    assert answer["variants"] == {"fruit": "float32", "fruit-int8": "int8"}
    for scores in answer["scores"].values():
        assert len(scores) == 4 and abs(sum(scores) - 1.0) < 0.05  # softmax over the four fruit classes


REFUSE = """
import json, sys
from pathlib import Path
from models import ModelManager, ModelError

folder = Path(sys.argv[1])
answers = {}
for runtime, files in (("dlr", ["compiled.so", "compiled.params", "compiled_model.json", "compiled.meta"]),
                       (None, ["model.tflite"])):
    manifest = {"name": "neo", "version": "1", "input_shape": {"data": [1, 3, 8, 8]},
                "artifacts": {"layout": "neo-dlr" if runtime else "unknown", "runtime": runtime,
                              "files": files}}
    try:
        ModelManager().load("neo", folder, manifest)
        answers[str(runtime)] = "loaded"
    except ModelError as error:
        answers[str(runtime)] = "refused: " + str(error)
print(json.dumps(answers))
"""


def test_a_package_of_neo_dlr_artifacts_is_refused_with_the_reason_where_dlr_cannot_load(tmp_path):
    """Issue 12: the agent reads Neo's layout and loads it with DLR where DLR is usable; in the agent's
    environment DLR has no libdlr.so (PyPI's dlr wheels carry none for Python 3.11), so the package is refused
    with a message naming the runtime and the fix — not a crash on a missing orchard-only field."""
    for name in ("compiled.so", "compiled.params", "compiled_model.json", "compiled.meta", "model.tflite"):
        (tmp_path / name).write_bytes(b"neo output")
    python = str(job_env_python("edge_agent"))
    result = subprocess.run(
        [python, "-c", REFUSE, str(tmp_path)],
        cwd=INCLUDE / "edge_agent",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["dlr"].startswith(
        "refused: the package holds Neo's DLR artifacts (compiled.so, compiled.params"
    )
    assert "the DLR runtime is not usable here" in answers["dlr"] and "Install DLR" in answers["dlr"]
    assert answers["None"].startswith("refused: package neo 1: no runtime on this device loads its artifacts")
    assert "model.tflite" in answers["None"] and "this agent loads dlr, tvm-relax-vm" in answers["None"]
