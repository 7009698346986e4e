"""Float32 vs int8 edge models: size and top-1 agreement, medians over several generated models.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/edge_deployment_int8.py [--runs 7]

Each run generates the demo classifier with another seed (include/edge_compiler/demo_model.py), then does
what the pipeline's prepare job and Neo compilation do (include/edge_compiler/prepare.py: ONNX Runtime
static QDQ quantization, per-channel weights, calibrated on half of 40 images, top-1 agreement on the other
half; compile.py: Apache TVM for linux_x86_64), for the float32 and the int8 model, in the compiler's own
environment as the sandbox runs them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from local_aws.demo_data import edge_deployment as demo


def one_run(seed: int, workdir: Path) -> dict:
    out = demo.generate(workdir / f"seed-{seed}", per_device=1, calibration=40, seed=seed)
    float_dir, int8_dir = demo.prepare_and_compile(out, "none"), demo.prepare_and_compile(out, "int8")
    prepared = json.loads((int8_dir / "prepare.json").read_text())
    compiled = {
        name: (folder / "compiled.so").stat().st_size
        for name, folder in (("float32", float_dir), ("int8", int8_dir))
    }
    return {**prepared, "compiled_bytes": compiled}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [one_run(seed, Path(tmp)) for seed in range(1, args.runs + 1)]
    sizes = {k: statistics.median(r["sizes_bytes"][k] for r in results) for k in results[0]["sizes_bytes"]}
    compiled = {k: statistics.median(r["compiled_bytes"][k] for r in results) for k in ("float32", "int8")}
    agreement = statistics.median(r["int8_top1_agreement"] for r in results)
    print(
        f"runs: {args.runs} generated models (seeds 1-{args.runs}); {results[0]['int8_method']}; Apache TVM linux_x86_64"
    )
    print(
        f"ONNX model size      float32 {sizes['onnx_float32']:,.0f} B   int8 {sizes['onnx_int8']:,.0f} B   "
        f"(x{sizes['onnx_float32'] / sizes['onnx_int8']:.2f} smaller)"
    )
    print(f"compiled library     float32 {compiled['float32']:,.0f} B   int8 {compiled['int8']:,.0f} B")
    print(
        f"int8 top-1 agreement with float32: median {agreement:.3f} "
        f"(per run: {[r['int8_top1_agreement'] for r in results]}, {results[0]['int8_agreement_images']} held-out "
        f"images each, ONNX Runtime float32 vs int8)"
    )


if __name__ == "__main__":
    main()
