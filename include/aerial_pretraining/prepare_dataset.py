"""BigEarthNet-S2 -> training-ready data: the SageMaker processing job of `prepare_dataset`.

    python prepare_dataset.py --input_dir /opt/ml/processing/input/raw --output_dir /opt/ml/processing/output \
        --baseline_dir /opt/ml/processing/input/baseline --arch vit_small --patch_size 16

Writes `metadata/final_ben_s2.parquet` (recommended set: snow / cloud / shadow patches out, original
split, BEN-19 labels), `rgb/<patch>.tif` (B04/B03/B02 scaled by 2000 to 0–255, uint8) and `summary.json`.
It fails, naming the file or label, on an unknown label, a missing band file or an empty split, and
checks the baseline checkpoint fits arch / patch_size: all before any GPU job starts.

An input error is the user's to fix, and no retry can fix it: the job writes `InputError: <message>` to
/opt/ml/output/failure (SageMaker's FailureReason; the orchard operator fails the task without retry) and
exits 65. The message names the S3 object (`--input_uri` / `--baseline_uri`), not the container path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import tifffile
from bands import MissingBandError, read_rgb
from checkpoint import CheckpointMismatchError
from labels import UnknownLabelError
from metadata import EmptySplitError, build_metadata, write_parquet

METADATA_FILE = "final_ben_s2.parquet"
FAILURE_FILE = "/opt/ml/output/failure"
# orchard.errors' convention (job code runs without Airflow and repeats the values).
INPUT_ERROR_EXIT_CODE = 65
INPUT_ERROR_PREFIX = "InputError: "
INPUT_ERRORS = (
    MissingBandError,
    UnknownLabelError,
    EmptySplitError,
    CheckpointMismatchError,
    FileNotFoundError,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input_dir", default="/opt/ml/processing/input/raw")
    p.add_argument("--output_dir", default="/opt/ml/processing/output")
    p.add_argument("--baseline_dir", default="", help="folder holding the baseline checkpoint to check")
    p.add_argument("--arch", default="vit_small")
    p.add_argument("--patch_size", type=int, default=16)
    p.add_argument("--input_uri", default="", help="the S3 URI downloaded to --input_dir (for messages)")
    p.add_argument("--baseline_uri", default="", help="the S3 URI of the baseline checkpoint (for messages)")
    p.add_argument("--failure_file", default=FAILURE_FILE)
    return p.parse_args(argv)


def to_s3(message: str, folders: dict[str, str]) -> str:
    """`message` with each local folder replaced by the S3 URI it was downloaded from (the user's object)."""
    for local, uri in sorted(folders.items(), key=lambda item: -len(item[0])):
        if local and uri:
            message = message.replace(local.rstrip("/") + "/", uri.rstrip("/") + "/")
            message = message.replace(local, uri.rstrip("/"))
    return message


def check_baseline(baseline_dir: Path, arch: str, patch_size: int) -> str:
    from checkpoint import load_backbone
    from probe import find_checkpoint

    path = find_checkpoint(baseline_dir)
    load_backbone(path, arch, patch_size)
    return path.name


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return prepare(args)
    except INPUT_ERRORS as error:
        baseline_folder = args.baseline_uri.rsplit("/", 1)[0] if args.baseline_uri else ""
        message = to_s3(str(error), {args.input_dir: args.input_uri, args.baseline_dir: baseline_folder})
        print(f"{type(error).__name__}: {message}", file=sys.stderr, flush=True)
        failure = Path(args.failure_file)
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{INPUT_ERROR_PREFIX}{type(error).__name__}: {message}"[:1024])
        raise SystemExit(INPUT_ERROR_EXIT_CODE) from None


def prepare(args: argparse.Namespace) -> int:
    raw, output = Path(args.input_dir), Path(args.output_dir)
    baseline = (
        check_baseline(Path(args.baseline_dir), args.arch, args.patch_size) if args.baseline_dir else None
    )
    if baseline:
        print(f"[prepare] baseline checkpoint {baseline} fits {args.arch}/{args.patch_size}", flush=True)
    metadata = build_metadata(raw)
    print(
        f"[prepare] {len(metadata.rows)} patches kept {metadata.split_counts()}; excluded {metadata.excluded}",
        flush=True,
    )
    write_parquet(metadata, output / "metadata" / METADATA_FILE)
    rgb_dir = output / "rgb"
    rgb_dir.mkdir(parents=True, exist_ok=True)
    for row in metadata.rows:
        tifffile.imwrite(rgb_dir / f"{row['name']}.tif", read_rgb(raw, row["name"]), photometric="rgb")
    summary = {
        "patches": len(metadata.rows),
        "splits": metadata.split_counts(),
        "excluded": metadata.excluded,
        "baseline_checkpoint": baseline,
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"[prepare] wrote {output / 'metadata' / METADATA_FILE} and {len(metadata.rows)} RGB images",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
