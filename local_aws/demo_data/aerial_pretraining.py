"""Demo data of `aerial_pretraining`: a small BigEarthNet-S2 look-alike, generated in code.

`generate(root)` writes what the BigEarthNet v1.0 archive holds, at toy scale: one folder per 120×120
patch with three single-band uint16 GeoTIFFs (B02/B03/B04, L2A-like reflectance with class-dependent
textures, some pixels above 2000 to exercise the 255 clip) and `<patch>_labels_metadata.json` with BEN-43
labels; beside them `train.csv` / `val.csv` / `test.csv` and the snow and cloud/shadow exclusion lists,
whose patches (white / grey images) the prepare job must drop, plus one patch with only labels BEN-19
drops. `upload()` puts it in the data bucket, writes a randomly initialised `vit_demo` backbone as the
demo's baseline (there is no ImageNet DINO checkpoint offline) and returns a conf for the tiny demo model.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

SIZE = 120
PREFIX = "aerial_pretraining/bigearthnet-s2/"
BASELINE_KEY = "aerial_pretraining/baselines/vit_demo_random_init.pth"
INCLUDE = Path(__file__).resolve().parents[2] / "include" / "aerial_pretraining"

# texture name -> (BEN-43 label, mean reflectance of B04/B03/B02)
TEXTURES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "forest": ("Coniferous forest", (300, 500, 350)),
    "water": ("Water bodies", (200, 350, 600)),
    "arable": ("Non-irrigated arable land", (1100, 900, 600)),
    "urban": ("Discontinuous urban fabric", (1600, 1500, 1400)),
    "pasture": ("Pastures", (700, 1000, 500)),
    "beach": ("Beaches, dunes, sands", (2300, 2100, 1800)),
}


def _texture(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 120×120 pattern in [0, 1] that tells the classes apart (frequency, orientation, structure)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "forest":
        pattern = rng.random((SIZE // 6, SIZE // 6)).repeat(6, 0).repeat(6, 1)
    elif kind == "water":
        pattern = 0.5 + 0.1 * np.sin(3 * x + phase)
    elif kind == "arable":
        angle = rng.uniform(0, np.pi)
        pattern = 0.5 + 0.5 * np.sign(np.sin(40 * (x * np.cos(angle) + y * np.sin(angle)) + phase))
    elif kind == "urban":
        pattern = ((np.floor(x * 12 + phase) + np.floor(y * 12)) % 2) * 0.8 + 0.2 * rng.random((SIZE, SIZE))
    elif kind == "pasture":
        pattern = 0.5 + 0.3 * rng.standard_normal((SIZE, SIZE)).clip(-2, 2) / 2
    else:  # beach
        pattern = 0.5 + 0.5 * np.sin(8 * y + 2 * np.sin(5 * x) + phase)
    return pattern


def _patch_bands(kinds: list[str], rng: np.random.Generator) -> list[np.ndarray]:
    """B04, B03, B02 of a patch whose area is split between its classes."""
    bands = [np.zeros((SIZE, SIZE)) for _ in range(3)]
    boundaries = np.linspace(0, SIZE, len(kinds) + 1).astype(int)
    for kind, start, end in zip(kinds, boundaries[:-1], boundaries[1:], strict=True):
        pattern = _texture(kind, rng)
        for band, mean in zip(bands, TEXTURES[kind][1], strict=True):
            band[:, start:end] = (mean * (0.6 + 0.8 * pattern))[:, start:end]
    return [np.clip(b + rng.normal(0, 40, b.shape), 0, 10000).astype(np.uint16) for b in bands]


def write_geotiff(path: Path, band: np.ndarray, origin: tuple[float, float] = (500000.0, 5300000.0)) -> None:
    """A single-band uint16 GeoTIFF (10 m pixels, UTM 32N), uncompressed: what tifffile/rasterio read."""
    height, width = band.shape
    data = band.astype("<u2").tobytes()
    geokeys = [
        1,
        1,
        0,
        3,
        1024,
        0,
        1,
        1,
        1025,
        0,
        1,
        1,
        3072,
        0,
        1,
        32632,
    ]  # projected, pixel-is-area, EPSG 32632
    extra = {
        33550: (12, [10.0, 10.0, 0.0]),  # ModelPixelScale
        33922: (12, [0.0, 0.0, 0.0, origin[0], origin[1], 0.0]),  # ModelTiepoint
        34735: (3, geokeys),  # GeoKeyDirectory
    }
    tags = {
        256: (3, [width]),
        257: (3, [height]),
        258: (3, [16]),
        259: (3, [1]),
        262: (3, [1]),
        273: (4, [0]),
        277: (3, [1]),
        278: (3, [height]),
        279: (4, [len(data)]),
        284: (3, [1]),
        339: (3, [1]),
        **extra,
    }
    formats = {3: ("H", 2), 4: ("I", 4), 12: ("d", 8)}
    ifd_offset = 8
    ifd_size = 2 + 12 * len(tags) + 4
    blobs, blob_offset = b"", ifd_offset + ifd_size
    entries = []
    strip_offset_slot = None
    for tag in sorted(tags):
        kind, values = tags[tag]
        fmt, size = formats[kind]
        payload = struct.pack(f"<{len(values)}{fmt}", *values)
        if len(payload) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + payload.ljust(4, b"\0"))
            if tag == 273:
                strip_offset_slot = len(entries) - 1
        else:
            entries.append(struct.pack("<HHII", tag, kind, len(values), blob_offset + len(blobs)))
            blobs += payload + (b"\0" if len(payload) % 2 else b"")
    image_offset = blob_offset + len(blobs)
    entries[strip_offset_slot] = struct.pack("<HHII", 273, 4, 1, image_offset)
    header = b"II" + struct.pack("<HI", 42, ifd_offset)
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    path.write_bytes(header + ifd + blobs + data)


def _write_patch(root: Path, name: str, bands: list[np.ndarray], labels: list[str], date: str) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for band_name, band in zip(("B04", "B03", "B02"), bands, strict=True):
        write_geotiff(folder / f"{name}_{band_name}.tif", band)
    metadata = {
        "labels": labels,
        "coordinates": {"ulx": 500000, "uly": 5300000, "lrx": 501200, "lry": 5298800},
        "projection": "EPSG:32632",
        "tile_source": "S2A_MSIL1C_demo",
        "acquisition_date": date,
    }
    (folder / f"{name}_labels_metadata.json").write_text(json.dumps(metadata))


def generate(root: Path, patches: int = 240, seed: int = 0) -> dict[str, list[str]]:
    """Write the toy archive under `root`; return the split lists (snow/cloud/no-label patches included)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    kinds = list(TEXTURES)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    weights = {"train": 0.6, "val": 0.2, "test": 0.2}
    for index in range(patches):
        name = f"S2A_MSIL2A_20170613T101031_{index // 10}_{index % 10}"
        chosen = sorted(rng.choice(len(kinds), size=rng.integers(1, 3), replace=False))
        patch_kinds = [kinds[k] for k in chosen]
        _write_patch(
            root,
            name,
            _patch_bands(patch_kinds, rng),
            [TEXTURES[k][0] for k in patch_kinds],
            "2017-06-13 10:10:31",
        )
        split = "train" if index % 5 < 3 else ("val" if index % 5 == 3 else "test")
        splits[split].append(name)
    excluded = {"patches_with_seasonal_snow.csv": [], "patches_with_cloud_and_shadow.csv": []}
    for index, (listing, level) in enumerate(
        [("patches_with_seasonal_snow.csv", 9000)] * 3 + [("patches_with_cloud_and_shadow.csv", 4000)] * 3
    ):
        name = f"S2B_MSIL2A_20180204T094159_excluded_{index}"
        flat = [
            np.full((SIZE, SIZE), level, np.uint16) + rng.integers(0, 50, (SIZE, SIZE), dtype=np.uint16)
            for _ in range(3)
        ]
        _write_patch(root, name, flat, ["Coniferous forest"], "2018-02-04 09:41:59")
        excluded[listing].append(name)
        splits[list(weights)[index % 3]].append(name)
    dropped = "S2A_MSIL2A_20170613T101031_only_airport"
    _write_patch(root, dropped, _patch_bands(["urban"], rng), ["Airports"], "2017-06-13 10:10:31")
    splits["train"].append(dropped)
    for split, names in splits.items():
        (root / f"{split}.csv").write_text("".join(f"{n}\n" for n in names))
    for listing, names in excluded.items():
        (root / listing).write_text("".join(f"{n}\n" for n in names))
    return splits


def write_random_baseline(path: Path, arch: str = "vit_demo", patch_size: int = 16) -> None:
    """A randomly initialised backbone, written with the job image's own torch (not Airflow's)."""
    from local_aws import dockerfiles

    # The environment of the prepare job's image (include/aerial_pretraining/Dockerfile), which loads it.
    python = dockerfiles.build(INCLUDE, "aerial-pretraining", log=lambda line: None).bin_dir / "python"
    subprocess.run(
        [str(python), "checkpoint.py", str(path), "--arch", arch, "--patch_size", str(patch_size)],
        cwd=INCLUDE,
        check=True,
        capture_output=True,
        text=True,
    )


def upload(s3_client: Any, settings: Any, patches: int = 240) -> dict:
    with TemporaryDirectory(prefix="aerial-demo-") as tmp:
        root = Path(tmp) / "raw"
        generate(root, patches=patches)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            s3_client.upload_file(str(path), settings.data_bucket, PREFIX + path.relative_to(root).as_posix())
        baseline = Path(tmp) / "baseline.pth"
        write_random_baseline(baseline)
        s3_client.upload_file(str(baseline), settings.artifacts_bucket, BASELINE_KEY)
    return demo_conf(settings)


def demo_conf(settings: Any) -> dict:
    """The tiny model and short runs that finish the whole DAG in minutes on 2 CPU cores."""
    return {
        "raw_dataset_uri": f"s3://{settings.data_bucket}/{PREFIX}",
        "baseline_checkpoint_uri": f"s3://{settings.artifacts_bucket}/{BASELINE_KEY}",
        "arch": "vit_demo",
        "patch_size": 16,
        "epochs": 2,
        "batch_size": 16,
        "out_dim": 256,
        "global_crop_size": 64,
        "local_crop_size": 32,
        "local_crops_number": 2,
        "probe_image_size": 64,
        "probe_epochs": 30,
        "pretrain_instance_type": "ml.m5.xlarge",
        "probe_instance_type": "ml.m5.xlarge",
        "promotion_margin": 0.0,
        "poll_seconds": 2,
        "require_approval": False,  # the demo runs unattended: nobody answers an approval
    }
