"""BigEarthNet-S2 per-patch metadata -> one table (the "recommended" set of bigearthnet_gdf_builder).

Reads the archive as BigEarthNet v1.0 ships it: one folder per patch with `<patch>_labels_metadata.json`
(its BEN-43 "labels", "acquisition_date"), and beside the folders the split lists `train.csv`, `val.csv`,
`test.csv` and the exclusion lists `patches_with_seasonal_snow.csv`, `patches_with_cloud_and_shadow.csv`.
Excluded: patches on either exclusion list, and patches left with no BEN-19 label.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from bands import RGB_BANDS, MissingBandError, band_path
from labels import to_ben19

SPLITS = ("train", "val", "test")
EXCLUSION_LISTS = {
    "seasonal_snow": "patches_with_seasonal_snow.csv",
    "cloud_and_shadow": "patches_with_cloud_and_shadow.csv",
}


class EmptySplitError(ValueError):
    """A split with no usable patch: the message names the split, its list file and what removed them."""


@dataclass
class Metadata:
    rows: list[dict] = field(default_factory=list)
    excluded: dict[str, int] = field(
        default_factory=lambda: {"seasonal_snow": 0, "cloud_and_shadow": 0, "no_ben19_label": 0}
    )

    def split_counts(self) -> dict[str, int]:
        return {split: sum(row["original_split"] == split for row in self.rows) for split in SPLITS}


def read_name_list(path: Path) -> list[str]:
    """Patch names, one per line (first column), as BigEarthNet's CSV lists have them."""
    if not path.is_file():
        raise FileNotFoundError(
            f"missing list file {path}: BigEarthNet's train.csv / val.csv / test.csv and exclusion lists must sit beside the patch folders"
        )
    with path.open(newline="") as handle:
        return [row[0].strip() for row in csv.reader(handle) if row and row[0].strip()]


def build_metadata(raw_dir: Path, check_bands: bool = True) -> Metadata:
    raw_dir = Path(raw_dir)
    excluded = {reason: set(read_name_list(raw_dir / name)) for reason, name in EXCLUSION_LISTS.items()}
    metadata = Metadata()
    for split in SPLITS:
        for name in read_name_list(raw_dir / f"{split}.csv"):
            reason = next((r for r, names in excluded.items() if name in names), None)
            if reason:
                metadata.excluded[reason] += 1
                continue
            row = _patch_row(raw_dir, name, split)
            if not row["new_labels"]:
                metadata.excluded["no_ben19_label"] += 1
                continue
            if check_bands:
                _require_bands(raw_dir, name)
            metadata.rows.append(row)
    _require_every_split(metadata, raw_dir)
    return metadata


def _patch_row(raw_dir: Path, name: str, split: str) -> dict:
    path = raw_dir / name / f"{name}_labels_metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"missing metadata file {path} for patch {name!r} listed in {split}.csv")
    record = json.loads(path.read_text())
    labels = list(record.get("labels", []))
    return {
        "name": name,
        "original_split": split,
        "labels": labels,
        "new_labels": to_ben19(labels, where=str(path)),
        "acquisition_date": str(record.get("acquisition_date", "")),
    }


def _require_bands(raw_dir: Path, name: str) -> None:
    for band in RGB_BANDS:
        path = band_path(raw_dir, name, band)
        if not path.is_file():
            raise MissingBandError(
                f"missing band file {path} (patch {name!r}): each patch needs {', '.join(RGB_BANDS)}; "
                "re-upload it or remove the patch from the split lists"
            )


def _require_every_split(metadata: Metadata, raw_dir: Path) -> None:
    counts = metadata.split_counts()
    for split, count in counts.items():
        if count == 0:
            raise EmptySplitError(
                f"split {split!r} is empty after exclusions ({raw_dir / f'{split}.csv'}; excluded so far: "
                f"{metadata.excluded}): DINO needs train patches, the probe train/val/test; add patches to it"
            )


def write_parquet(metadata: Metadata, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(metadata.rows), path)


def read_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"missing metadata parquet {path}: run the prepare_dataset processing job first"
        )
    return pq.read_table(path).to_pylist()
