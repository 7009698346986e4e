"""The edge demo's model and images, generated: a small fruit-colour image classifier in ONNX.

Four classes of 32x32 RGB images (apple: red disc, lime: green disc, blueberry: small blue discs,
banana: yellow ellipse) on noisy backgrounds. The network is two fixed random convolutions (a
random-feature extractor) and a softmax layer trained here with numpy on the extracted features, so no
deep-learning framework and no download is needed.

    python demo_model.py --out DIR [--train 400] [--calibration 40] [--per-device 24] [--devices 2]

writes DIR/model.tar.gz (model.onnx), DIR/images/calibration/*.npy and DIR/images/<device index>/*.npy
(uint8 H x W x 3). Device 1's camera sees brighter, warmer scenes than the others: the monitor's drift.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ["apple", "lime", "blueberry", "banana"]
SIZE = 32
INPUT = "data"


def make_image(label: int, rng: np.random.Generator, brightness: float = 0.0) -> np.ndarray:
    image = rng.normal(110, 25, size=(SIZE, SIZE, 3))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    cy, cx = rng.uniform(10, 22, size=2)
    colours = {0: (200, 30, 30), 1: (60, 190, 40), 2: (40, 50, 200), 3: (230, 210, 40)}
    if label == 2:
        for _ in range(3):
            by, bx = rng.uniform(5, 27, size=2)
            image[(yy - by) ** 2 + (xx - bx) ** 2 < rng.uniform(6, 12)] = colours[2]
    elif label == 3:
        image[((yy - cy) / 4.5) ** 2 + ((xx - cx) / 11) ** 2 < 1] = colours[3]
    else:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(40, 80)] = colours[label]
    image = image + rng.normal(0, 12, size=image.shape) + brightness
    return np.clip(image, 0, 255).astype(np.uint8)


def to_input(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)


def _graph(weights: dict[str, np.ndarray], with_head: bool):
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", [INPUT, "conv1_w", "conv1_b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2_w", "conv2_b"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["features"]),
    ]
    names = ["conv1_w", "conv1_b", "conv2_w", "conv2_b"]
    output = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, weights["conv2_w"].shape[0]])
    if with_head:
        nodes += [  # standardise the features, then the softmax layer (kept apart: both stay int8-friendly)
            helper.make_node("Sub", ["features", "feature_mean"], ["centred"]),
            helper.make_node("Mul", ["centred", "feature_inv_std"], ["standardised"]),
            helper.make_node("Gemm", ["standardised", "fc_w", "fc_b"], ["logits"], transB=1),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ]
        names += ["feature_mean", "feature_inv_std", "fc_w", "fc_b"]
        output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(CLASSES)])
    graph = helper.make_graph(
        nodes,
        "fruit_colour_classifier",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [output],
        [numpy_helper.from_array(weights[n], n) for n in names],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="orchard-demo"
    )
    model.ir_version = 8
    return model


def _features(weights: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(
        _graph(weights, with_head=False).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return np.concatenate([session.run(None, {INPUT: x[None]})[0] for x in to_input(images)])


def _colour_filters(rng: np.random.Generator) -> np.ndarray:
    """Six opponent-colour detectors (what tells these fruits apart) and ten random 3x3 filters."""
    opponents = np.array(
        [[1, -1, 0], [-1, 1, 0], [-0.5, -0.5, 1], [0.5, 0.5, -1], [1, 0, -1], [-1, 0, 1]], np.float32
    )
    filters = rng.normal(0, 0.4, size=(16, 3, 3, 3)).astype(np.float32)
    filters[:6] = opponents[:, :, None, None] / 9.0 * 3.0  # a 3x3 average of each opponent channel, x3
    return filters


def train(rng: np.random.Generator, count: int) -> tuple[object, float]:
    labels = rng.integers(0, len(CLASSES), size=count)
    images = np.stack([make_image(int(label), rng) for label in labels])
    weights = {
        "conv1_w": _colour_filters(rng),
        "conv1_b": np.array([-0.15] * 6 + [0.0] * 10, np.float32),
        "conv2_w": rng.normal(0, 0.15, size=(48, 16, 3, 3)).astype(np.float32),
        "conv2_b": np.zeros(48, np.float32),
    }
    features = _features(weights, images)
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = (features - mean) / std
    w, b = np.zeros((len(CLASSES), x.shape[1])), np.zeros(len(CLASSES))
    onehot = np.eye(len(CLASSES))[labels]
    for _ in range(400):  # softmax regression, full-batch gradient descent
        logits = x @ w.T + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        w -= 0.5 * ((p - onehot).T @ x / count + 1e-3 * w)
        b -= 0.5 * (p - onehot).mean(axis=0)
    accuracy = float(((x @ w.T + b).argmax(axis=1) == labels).mean())
    weights["feature_mean"] = mean.astype(np.float32)[None]
    weights["feature_inv_std"] = (1.0 / std).astype(np.float32)[None]
    weights["fc_w"] = w.astype(np.float32)
    weights["fc_b"] = b.astype(np.float32)
    return _graph(weights, with_head=True), accuracy


def write_images(folder: Path, rng: np.random.Generator, count: int, brightness: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        label = int(rng.integers(0, len(CLASSES)))
        np.save(folder / f"img-{index:04d}-{CLASSES[label]}.npy", make_image(label, rng, brightness))


def main(argv: list[str] | None = None) -> dict:
    import onnx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--calibration", type=int, default=40)
    parser.add_argument("--per-device", type=int, default=24)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    model, accuracy = train(rng, args.train)
    onnx.checker.check_model(model)
    (out / "model").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model" / "model.onnx"))
    with tarfile.open(out / "model.tar.gz", "w:gz") as tar:
        tar.add(out / "model" / "model.onnx", arcname="model.onnx")
    write_images(out / "images" / "calibration", rng, args.calibration)
    for device in range(args.devices):
        write_images(
            out / "images" / str(device), rng, args.per_device, brightness=60.0 if device == 1 else 0.0
        )
    summary = {"train_accuracy": round(accuracy, 4), "classes": CLASSES, "input": {INPUT: [1, 3, SIZE, SIZE]}}
    (out / "model.json").write_text(json.dumps(summary))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
