"""The edge agent's predictions per second on this CPU: the TVM-compiled demo model, float32 and int8.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/edge_deployment_agent_throughput.py [--runs 5] [--images 200]

Prepares and compiles the demo classifier, float32 and int8 (include/edge_compiler: ONNX Runtime
quantization, Apache TVM for linux_x86_64), then in the
agent's own environment loads each variant with the agent's ModelManager and times the agent's
predict_and_capture path over the frames (capture to an in-memory S3 stand-in, batches of 10: the
upload itself is network-bound and not measured). One process, batch size 1 as on a device, TVM runtime threads left at their default.
Median of `runs` passes per variant, after one warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from local_aws.demo_data import edge_deployment as demo
from local_aws.environments import ensure_env

AGENT = REPO / "include" / "edge_agent"

DRIVER = r"""
import json, statistics, sys, time
from pathlib import Path
import numpy as np
from agent import Agent, Config
from capture import CaptureBuffer, CaptureSettings
from models import ModelManager

folders = {"float32": Path(sys.argv[1]), "int8": Path(sys.argv[4])}
frames, runs = sorted(Path(sys.argv[2]).glob("*.npy")), int(sys.argv[3])
images = [np.load(p) for p in frames]

class MemoryS3:
    def put_object(self, **kwargs): pass

results = {}
for variant in ("float32", "int8"):
    agent = Agent.__new__(Agent)
    agent.models = ModelManager()
    agent._capture = CaptureBuffer(CaptureSettings("b", "p", buffer_size=1000, batch_size=10, push_period_seconds=5), MemoryS3(), "bench")
    meta = json.loads((folders[variant] / "compiled.meta").read_text())
    manifest = {"name": "demo", "version": "1", "variant": variant,
                "artifacts": {"runtime": meta["Runtime"], "files": ["compiled.so", "compiled.meta"]},
                "input_shape": {i["name"]: i["shape"] for i in meta["Model"]["Inputs"]}}
    agent.models.load("demo", folders[variant], manifest)
    rates = []
    for attempt in range(runs + 1):
        started = time.perf_counter()
        for index, image in enumerate(images):
            agent.predict_and_capture("demo", image, request_id=str(index))
        elapsed = time.perf_counter() - started
        if attempt:  # the first pass warms caches
            rates.append(len(images) / elapsed)
    agent._capture.close()
    results[variant] = {"median": statistics.median(rates), "runs": [round(r, 1) for r in rates]}
print(json.dumps(results))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    agent = ensure_env((AGENT / "requirements.txt").read_text(), label="edge-agent") / "python"
    with tempfile.TemporaryDirectory() as tmp:
        out = demo.generate(Path(tmp), per_device=args.images, calibration=40)
        float_dir, int8_dir = demo.prepare_and_compile(out, "none"), demo.prepare_and_compile(out, "int8")
        done = subprocess.run(
            [
                str(agent),
                "-c",
                DRIVER,
                str(float_dir),
                str(out / "images" / "0"),
                str(args.runs),
                str(int8_dir),
            ],
            cwd=AGENT,
            check=True,
            capture_output=True,
            text=True,
        )
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"agent predict_and_capture, 32x32 RGB demo classifier, {args.images} frames x {args.runs} runs, "
        f"batch 1, TVM runtime default threads on this machine (linux_x86_64 libraries)"
    )
    for variant, result in results.items():
        print(f"{variant:8s} median {result['median']:,.0f} predictions/s   (runs: {result['runs']})")


if __name__ == "__main__":
    main()
