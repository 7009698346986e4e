"""Sentinel-2 bands as GeoTIFF files -> true-colour RGB, the way the seed prepares BigEarthNet-S2 for DINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

# Surface reflectance (L2A digital numbers) mapped to 255: the seed's OPTICAL_MAX_VALUE.
OPTICAL_MAX_VALUE = 2000
RGB_BANDS = ("B04", "B03", "B02")  # red, green, blue


class MissingBandError(FileNotFoundError):
    """A band file a patch needs is not there: the message names the file."""


def band_path(data_dir: Path, patch_name: str, band: str) -> Path:
    return Path(data_dir) / patch_name / f"{patch_name}_{band}.tif"


def read_band(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MissingBandError(
            f"missing band file {path}: every patch folder needs {', '.join(RGB_BANDS)} GeoTIFFs "
            "(<patch>/<patch>_B0N.tif); re-upload the patch or drop it from the metadata"
        )
    return tifffile.imread(path)


def to_rgb(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """Scale by OPTICAL_MAX_VALUE to 0–255 and clip at 255 (the seed clipped at 225: a bug that saturated
    every bright pixel at 225 and left 226–255 unused)."""
    image = np.stack([red, green, blue], axis=2).astype(np.float32)
    image = image / OPTICAL_MAX_VALUE * 255
    return np.clip(image, 0, 255).astype(np.uint8)


def read_rgb(data_dir: Path, patch_name: str) -> np.ndarray:
    return to_rgb(*(read_band(band_path(data_dir, patch_name, band)) for band in RGB_BANDS))
