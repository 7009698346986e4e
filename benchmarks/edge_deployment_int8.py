"""Float32 vs int8 edge models: size and top-1 agreement, medians over several generated models.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/edge_deployment_int8.py [--runs 5]

Each run generates the demo classifier with another seed (include/edge_compiler/demo_model.py), then runs
the sandbox's Neo compiler (include/edge_compiler/compile.py: Apache TVM, target linux_x86_64) with
int8 quantization (ONNX Runtime static QDQ, per-channel weights, calibrated on half of 40 images,
agreement measured on the other half with the two TVM-compiled libraries). Both in the compiler's own
environment, as the sandbox runs them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from local_aws.environments import ensure_env

COMPILER = REPO / "include" / "edge_compiler"


def one_run(python: Path, seed: int, workdir: Path) -> dict:
    out = workdir / f"seed-{seed}"
    subprocess.run([str(python), "demo_model.py", "--out", str(out), "--seed", str(seed), "--calibration", "40",
                    "--per-device", "1", "--devices", "1"], cwd=COMPILER, check=True, capture_output=True)
    options = {"orchard_quantization": "int8", "orchard_calibration_uri": str(out / "images" / "calibration")}
    subprocess.run([str(python), "compile.py", "--model", str(out / "model.tar.gz"), "--framework", "ONNX",
                    "--data-input-config", '{"data": [1, 3, 32, 32]}', "--target", '{"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}',
                    "--output-dir", str(out / "compiled"), "--compiler-options", json.dumps(options)],
                   cwd=COMPILER, check=True, capture_output=True)
    return json.loads((out / "compiled" / "compiled.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = ensure_env((COMPILER / "requirements.txt").read_text(), label="edge-compiler") / "python"
    with tempfile.TemporaryDirectory() as tmp:
        results = [one_run(python, seed, Path(tmp)) for seed in range(1, args.runs + 1)]
    sizes = {k: statistics.median(r["sizes_bytes"][k] for r in results) for k in results[0]["sizes_bytes"]}
    agreement = statistics.median(r["int8_top1_agreement"] for r in results)
    print(f"runs: {args.runs} generated models (seeds 1-{args.runs}); {results[0]['compiler']}; "
          f"{results[0]['quantization']}")
    print(f"ONNX model size      float32 {sizes['onnx_float32']:,.0f} B   int8 {sizes['onnx_int8']:,.0f} B   "
          f"(x{sizes['onnx_float32'] / sizes['onnx_int8']:.2f} smaller)")
    print(f"compiled library     float32 {sizes['compiled_float32']:,.0f} B   int8 {sizes['compiled_int8']:,.0f} B")
    print(f"int8 top-1 agreement with float32: median {agreement:.3f} "
          f"(per run: {[r['int8_top1_agreement'] for r in results]}, {results[0]['int8_agreement_images']} held-out "
          f"images each, {results[0]['int8_agreement_measured_on']})")


if __name__ == "__main__":
    main()
