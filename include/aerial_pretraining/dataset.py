"""The BigEarthNet-S2 dataset: patches of one split, images and 19-class one-hot labels.

Images come from the prepared RGB GeoTIFFs (`rgb/<patch>.tif`, written by prepare_dataset.py) or, with
source="bands", straight from the B04/B03/B02 band files as the seed's class reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
import torch
from bands import read_rgb
from labels import LAND_COVER_LABELS, one_hot
from metadata import EmptySplitError, read_parquet
from torch.utils.data import Dataset


class MissingImageError(FileNotFoundError):
    """A prepared RGB image listed in the metadata is not there: the message names the file."""


def rgb_path(data_dir: Path, patch_name: str) -> Path:
    return Path(data_dir) / f"{patch_name}.tif"


class BigEarthNetDataset(Dataset):
    def __init__(
        self,
        metadata_file: Path,
        data_dir: Path,
        split: str = "train",
        source: str = "rgb",
        transform: Callable[[torch.Tensor], object] | None = None,
    ):
        if source not in ("rgb", "bands"):
            raise ValueError(f"source must be 'rgb' or 'bands', got {source!r}")
        rows = [row for row in read_parquet(metadata_file) if row["original_split"] == split]
        if not rows:
            raise EmptySplitError(
                f"split {split!r} has no patch in {metadata_file}; expected train, val and test patches"
            )
        self.data_dir, self.source, self.transform = Path(data_dir), source, transform
        self.patch_names = [row["name"] for row in rows]
        self.labels = torch.tensor(
            [one_hot(list(row["new_labels"]), where=f"{metadata_file}: {row['name']}") for row in rows]
        )

    def __len__(self) -> int:
        return len(self.patch_names)

    def image(self, index: int) -> torch.Tensor:
        """The patch as a float CHW tensor in [0, 1]."""
        name = self.patch_names[index]
        if self.source == "bands":
            array = read_rgb(self.data_dir, name)
        else:
            path = rgb_path(self.data_dir, name)
            if not path.is_file():
                raise MissingImageError(
                    f"missing image {path} for patch {name!r}: re-run prepare_dataset for this data"
                )
            array = tifffile.imread(path)
        return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255.0

    def __getitem__(self, index: int) -> tuple[object, torch.Tensor]:
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.labels[index]

    @staticmethod
    def label_names() -> tuple[str, ...]:
        return LAND_COVER_LABELS
