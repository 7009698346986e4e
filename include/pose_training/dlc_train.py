"""Train a DeepLabCut project from S3 on AWS Batch, then evaluate it and export the model to S3.

The three steps of the seed's `dlc-train.py`, each a function:

1. `import_dlc_zip_project`: stream the project zip from s3://$TGT_S3_BUCKET/$DLC_PROJECT_PATH to disk,
   extract it safely (no absolute paths, no `..`, no links) and point `project_path` in config.yaml at
   where it now lies;
2. `train_dlc_model`: labels CSV → H5 where only the CSV was zipped, training dataset if the lab did not
   create it, then `deeplabcut.train_network` for $DLC_EPOCHS epochs of $DLC_BATCH_SIZE images;
3. `export_dlc_model_s3`: `deeplabcut.evaluate_network` (plotting on: DeepLabCut draws every train and
   test image with the human labels against the predictions, `LabeledImages_*/Training-*.png` and
   `Test-*.png`) and `deeplabcut.export_model`, then the exported model, the evaluation results and
   plots, the learning curve and a `manifest.json` (listing the plots by split) go to $OUTPUT_PATH.

Backbone weights ($DLC_BACKBONE_WEIGHTS): `pretrained` (default, as on AWS: DeepLabCut downloads the
ImageNet weights from its hub), `none` (train from scratch: offline sandbox and tests), or the path of
a DeepLabCut snapshot (`.pt`) to start from.

Exit codes: 0 done, 65 bad input (a variable, the project, or its zip missing: orchard's INPUT_ERROR_EXIT_CODE, sysexits'
EX_DATAERR; the job definition's retryStrategy EXITs on it and the Airflow task fails without retry),
3 S3 read/write failed, 4 training failed, 5 evaluation or export failed.

Before DeepLabCut runs, the project is normalised and checked with the same rules as the Airflow-side
validation (`plugins/orchard/pose_training/project.py`; tests/plugins/pose_training/test_project.py runs both
on the same zips): entry names from any OS (backslashes, UTF-8 without the zip flag, macOS clutter
skipped), bounded sizes ($DLC_MAX_UNZIPPED_MB, $DLC_MAX_ZIP_RATIO), config paths of another machine
rewritten, labels that DeepLabCut would not read (another scorer, folders of no video, other bodyparts)
refused with exit 65. The exception's text and traceback go to stderr,
hence to the job's CloudWatch log.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# EXIT_BAD_INPUT repeats orchard.errors.INPUT_ERROR_EXIT_CODE (job code cannot import Airflow's side).
EXIT_BAD_INPUT, EXIT_S3, EXIT_TRAINING, EXIT_EXPORT = 65, 3, 4, 5
SHUFFLE = 1
MiB = 1024 * 1024
UTF8_FLAG = 0x800  # general purpose bit 11: the entry's name is UTF-8 (APPNOTE.TXT 4.4.4)
SKIPPED_FOLDERS = ("__MACOSX",)
SKIPPED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
RATIO_FLOOR_BYTES = MiB  # entries smaller than this are not ratio-checked


class JobError(Exception):
    """A failure with the exit code that says which step failed."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class JobConfig:
    bucket: str
    project_key: str
    output_bucket: str
    output_prefix: str
    epochs: int
    batch_size: int
    net_type: str
    weights: str
    workdir: Path
    train_crop: tuple[int, int] | None  # DeepLabCut's default (448 x 448) when None
    temporary_workdir: bool = False
    max_unzipped_bytes: int = 8192 * MiB
    max_ratio: float = 100
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> JobConfig:
        missing = [name for name in ("TGT_S3_BUCKET", "DLC_PROJECT_PATH", "OUTPUT_PATH") if not env.get(name)]
        if missing:
            raise JobError(
                f"missing environment variable(s) {', '.join(missing)}: set them in the job "
                "definition or the job's container overrides",
                EXIT_BAD_INPUT,
            )
        bucket = env["TGT_S3_BUCKET"]
        output_bucket, output_prefix = _output_location(bucket, env["OUTPUT_PATH"])
        local_path = env.get("LOCAL_PROJECT_PATH")
        workdir = Path(local_path or tempfile.mkdtemp(prefix="dlc-project-"))
        return cls(
            bucket=bucket,
            project_key=env["DLC_PROJECT_PATH"].lstrip("/"),
            output_bucket=output_bucket,
            output_prefix=output_prefix,
            epochs=_positive_int(env, "DLC_EPOCHS", 200),
            batch_size=_positive_int(env, "DLC_BATCH_SIZE", 8),
            net_type=env.get("DLC_NET_TYPE", "resnet_50"),
            weights=env.get("DLC_BACKBONE_WEIGHTS", "pretrained"),
            workdir=workdir,
            train_crop=_crop(env.get("DLC_TRAIN_CROP", "")),
            temporary_workdir=not local_path,
            max_unzipped_bytes=_positive_int(env, "DLC_MAX_UNZIPPED_MB", 8192) * MiB,
            max_ratio=_positive_int(env, "DLC_MAX_ZIP_RATIO", 100),
        )


def _output_location(bucket: str, output_path: str) -> tuple[str, str]:
    """OUTPUT_PATH is a prefix in TGT_S3_BUCKET (the seed's contract) or a full s3:// URI."""
    if output_path.startswith("s3://"):
        out_bucket, _, prefix = output_path[len("s3://") :].partition("/")
    else:
        out_bucket, prefix = bucket, output_path
    prefix = prefix.strip("/")
    return out_bucket, f"{prefix}/" if prefix else ""


def _crop(raw: str) -> tuple[int, int] | None:
    """DLC_TRAIN_CROP=<width>x<height>: the training crop; small images (the sandbox's) need no 448 px."""
    if not raw:
        return None
    width, _, height = raw.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 32 and int(height) >= 32):
        raise JobError(
            f"DLC_TRAIN_CROP={raw!r} is not <width>x<height> (each >= 32), e.g. 96x80", EXIT_BAD_INPUT
        )
    return int(width), int(height)


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise JobError(f"{name}={raw!r} is not a whole number >= 1", EXIT_BAD_INPUT)
    return int(raw)


# ------------------------------------------------------------------------------------------ step 1


def import_dlc_zip_project(s3, job: JobConfig) -> Path:
    """Download the zip (streamed to disk), extract it safely, rewrite project_path; return config.yaml."""
    archive = job.workdir / "project.zip"
    job.workdir.mkdir(parents=True, exist_ok=True)
    print(f"[import] s3://{job.bucket}/{job.project_key} -> {archive}", flush=True)
    try:
        s3.download_file(job.bucket, job.project_key, str(archive))  # multipart, streamed to the file
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):  # the user's object is gone: an input error
            raise JobError(
                f"s3://{job.bucket}/{job.project_key} does not exist (deleted after validation?): "
                "upload the project again",
                EXIT_BAD_INPUT,
            ) from error
        raise JobError(f"could not download s3://{job.bucket}/{job.project_key}: {error}", EXIT_S3) from error
    target = job.workdir / "project"
    safe_extract(archive, target, max_unzipped_bytes=job.max_unzipped_bytes, max_ratio=job.max_ratio)
    archive.unlink()
    config = find_config(target)
    edits = normalise_config(config)
    _set_project_path(config, edits)
    check_project(config)
    print(f"[import] project at {config.parent}", flush=True)
    return config


def entry_name(info: zipfile.ZipInfo) -> str | None:
    """The entry's path on Linux (`/` separators, UTF-8), or None for OS clutter (macOS `__MACOSX/`, `._*`).

    A name stored without the UTF-8 flag is decoded as cp437 by Python; macOS and 7-Zip store UTF-8
    without the flag: such a name that is valid UTF-8 is UTF-8.
    """
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    name = name.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if not parts or parts[0] in SKIPPED_FOLDERS or parts[-1].startswith("._") or parts[-1] in SKIPPED_FILES:
        return None
    return name


def check_sizes(
    members: list[tuple[str, zipfile.ZipInfo]], max_unzipped_bytes: int, max_ratio: float
) -> None:
    """Bound what extraction would write, from the central directory, before inflating anything."""
    total = sum(info.file_size for _, info in members)
    if total > max_unzipped_bytes:
        raise JobError(
            f"the project inflates to {total / MiB:.1f} MiB, over the "
            f"{max_unzipped_bytes / MiB:.0f} MiB limit (param max_unzipped_mb): leave the videos "
            "out of the zip",
            EXIT_BAD_INPUT,
        )
    for name, info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_FLOOR_BYTES and ratio > max_ratio:
            raise JobError(
                f"{name} inflates {ratio:.0f}x ({info.compress_size} -> {info.file_size} "
                f"bytes), over the {max_ratio:g}x limit (param max_zip_ratio): not a project "
                "file (a zip bomb?)",
                EXIT_BAD_INPUT,
            )


def safe_extract(
    archive: Path, target: Path, *, max_unzipped_bytes: int = 8192 * MiB, max_ratio: float = 100
) -> None:
    """Extract members one by one, refusing absolute paths, `..`, links and devices (zip-slip) and
    oversized or over-compressed content; names normalised by `entry_name`."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise JobError(
            f"the project is not a zip file ({error}): upload `zip -r project.zip <project>`", EXIT_BAD_INPUT
        ) from error
    root = target.resolve()
    with zf:
        members = [(name, info) for info in zf.infolist() if (name := entry_name(info)) is not None]
        check_sizes(members, max_unzipped_bytes, max_ratio)
        for name, member in members:
            parts = PurePosixPath(name).parts
            kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the zip tool recorded no type
            if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
                raise JobError(
                    f"unsafe path {name!r} in the zip: paths must stay inside the project", EXIT_BAD_INPUT
                )
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise JobError(
                    f"{name!r} in the zip is a link or special file: zip with `zip -r` (no -y)",
                    EXIT_BAD_INPUT,
                )
            destination = (root / Path(*parts)).resolve()
            if not destination.is_relative_to(root):
                raise JobError(f"unsafe path {name!r} in the zip", EXIT_BAD_INPUT)
            if member.is_dir() or name.endswith("/"):
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)


def find_config(root: Path) -> Path:
    """The project's config.yaml: the shallowest one (the zip may hold the project folder or its content)."""
    candidates = sorted(root.rglob("config.yaml"), key=lambda p: len(p.relative_to(root).parts))
    candidates = [c for c in candidates if (c.parent / "labeled-data").is_dir()] or candidates
    if not candidates:
        raise JobError(
            "no config.yaml in the project zip: zip the whole DeepLabCut project folder", EXIT_BAD_INPUT
        )
    return candidates[0]


def _load_config(config: Path) -> dict:
    import yaml

    try:
        loaded = yaml.safe_load(config.read_bytes())  # bytes: PyYAML reads a UTF-8 BOM, CRLF or LF
    except yaml.YAMLError as error:
        raise JobError(
            f"config.yaml is not valid YAML ({error}): fix it in the lab", EXIT_BAD_INPUT
        ) from error
    if not isinstance(loaded, dict):
        raise JobError("config.yaml is not a DeepLabCut config (no key: value pairs)", EXIT_BAD_INPUT)
    return loaded


def video_stem(path: str) -> str:
    """The labeled-data folder DeepLabCut reads for a video_sets entry, whichever OS wrote its path."""
    return PurePosixPath(str(path).replace("\\", "/")).stem


def normalise_config(config: Path) -> dict:
    """The config edits that make a project from another machine DeepLabCut's on this one: project_path
    is where it now lies; video_sets paths written on Windows get `/` separators (DeepLabCut on Linux
    takes `Path(video).stem` as the labeled-data folder, which a backslash path never matches)."""
    loaded = _load_config(config)
    edits: dict = {"project_path": str(config.parent)}
    videos = loaded.get("video_sets")
    if isinstance(videos, dict) and any("\\" in str(key) for key in videos):
        edits["video_sets"] = {str(key).replace("\\", "/"): value for key, value in videos.items()}
    return edits


def check_project(config: Path) -> None:
    """What DeepLabCut 3.0.2 reads to build the training set, checked before it runs (exit 65 if wrong):
    the scorer's CollectedData file in the labeled-data folder of each video_sets video, with the
    config's bodyparts, and the frames the labels name."""
    import csv

    loaded = _load_config(config)
    project = config.parent
    scorer = loaded.get("scorer")
    if not isinstance(scorer, str) or not scorer.strip():
        raise JobError(
            "config.yaml has no scorer: set `scorer:` to the name the labels were saved under", EXIT_BAD_INPUT
        )
    videos = loaded.get("video_sets")
    if not isinstance(videos, dict) or not videos:
        raise JobError(
            "config.yaml lists no video_sets: add the labeled videos before zipping", EXIT_BAD_INPUT
        )
    bodyparts = loaded.get("bodyparts")
    if loaded.get("multianimalproject") and (not bodyparts or bodyparts == "MULTI!"):
        bodyparts = [*(loaded.get("multianimalbodyparts") or []), *(loaded.get("uniquebodyparts") or [])]
    if not isinstance(bodyparts, list) or not bodyparts:
        raise JobError(
            "config.yaml defines no bodyparts: list the keypoints under `bodyparts:`", EXIT_BAD_INPUT
        )
    bodyparts = [str(b) for b in bodyparts]
    labeled = project / "labeled-data"
    label_files = sorted(p for p in labeled.glob("*/CollectedData_*") if p.suffix in (".csv", ".h5"))
    if not label_files:
        raise JobError(
            "labeled-data/ holds no CollectedData_<scorer>.csv/.h5: save the labels before zipping",
            EXIT_BAD_INPUT,
        )
    stems = {video_stem(key) for key in videos}
    folders = {p.parent.name for p in label_files}
    read = sorted(folder for folder in folders if folder in stems)
    if not read:
        raise JobError(
            f"DeepLabCut reads labeled-data/<video>/ only for the videos of config.yaml's "
            f"video_sets ({sorted(stems)}), and the labels are in {sorted(folders)}: list the "
            "labeled videos under video_sets or fix the folder names",
            EXIT_BAD_INPUT,
        )
    for folder in read:
        wanted = [labeled / folder / f"CollectedData_{scorer}{suffix}" for suffix in (".csv", ".h5")]
        if not any(path.is_file() for path in wanted):
            others = sorted(p.name for p in label_files if p.parent.name == folder)
            raise JobError(
                f"labeled-data/{folder}/ holds {others}, but config.yaml's scorer is "
                f"{scorer!r} and DeepLabCut reads CollectedData_{scorer}.csv/.h5 only: set "
                "`scorer:` to the labels' scorer, or save the labels again under this scorer",
                EXIT_BAD_INPUT,
            )
        if not wanted[0].is_file():
            continue  # H5 only: DeepLabCut reads it as it is
        with open(wanted[0], encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
        coords = next((i for i, row in enumerate(rows) if row and row[0] == "coords"), None)
        parts_row = next((row for row in rows[: coords or 0] if row and row[0] == "bodyparts"), None)
        if coords is None or parts_row is None:
            raise JobError(
                f"labeled-data/{folder}/{wanted[0].name} is not a DeepLabCut label file (no "
                "`coords` or `bodyparts` header row)",
                EXIT_BAD_INPUT,
            )
        label_parts = list(dict.fromkeys(part for part in parts_row[1:] if part))
        missing, extra = sorted(set(bodyparts) - set(label_parts)), sorted(set(label_parts) - set(bodyparts))
        if missing or extra:
            raise JobError(
                f"labeled-data/{folder}/{wanted[0].name} labels the bodyparts "
                f"{sorted(set(label_parts))}, config.yaml lists {bodyparts} (missing from the "
                f"labels: {missing}, not in the config: {extra}): make `bodyparts:` the labeled "
                "ones, or relabel",
                EXIT_BAD_INPUT,
            )
        for row in rows[coords + 1 :]:
            if not row or not row[0]:
                continue
            image = (
                f"labeled-data/{row[1]}/{row[2]}"
                if row[0] == "labeled-data" and len(row) > 2
                else row[0].replace("\\", "/")
            )
            if not (project / image).is_file():
                raise JobError(
                    f"labeled-data/{folder}/{wanted[0].name} labels {image}, which is not in "
                    "the zip: add the frame, or delete its labels and save again",
                    EXIT_BAD_INPUT,
                )


def _set_project_path(config: Path, edits: dict | None = None) -> None:
    from deeplabcut.utils import auxiliaryfunctions

    auxiliaryfunctions.edit_config(str(config), edits or {"project_path": str(config.parent)})


# ------------------------------------------------------------------------------------------ step 2


def train_dlc_model(config: Path, job: JobConfig) -> None:
    import deeplabcut

    _labels_to_h5(config)
    if not any((config.parent / "training-datasets").glob("**/*.mat")) and not any(
        (config.parent / "training-datasets").glob("**/*.pickle")
    ):
        print(f"[train] creating the training dataset ({job.net_type})", flush=True)
        deeplabcut.create_training_dataset(
            str(config), num_shuffles=1, net_type=job.net_type, userfeedback=False
        )
    options: dict = {"epochs": job.epochs, "batch_size": job.batch_size, "save_epochs": job.epochs}
    if job.weights == "none":
        options["snapshot_path"] = str(_untrained_snapshot(config, job))
    elif job.weights != "pretrained":
        if not Path(job.weights).is_file():
            raise JobError(
                f"DLC_BACKBONE_WEIGHTS={job.weights!r}: no such snapshot file (use pretrained, none "
                "or the path of a .pt snapshot)",
                EXIT_BAD_INPUT,
            )
        options["snapshot_path"] = job.weights
    if job.train_crop:
        width, height = job.train_crop
        options["pytorch_cfg_updates"] = {
            "data.train.crop_sampling.width": width,
            "data.train.crop_sampling.height": height,
        }
    print(f"[train] {job.epochs} epoch(s), batch size {job.batch_size}, weights: {job.weights}", flush=True)
    try:
        deeplabcut.train_network(str(config), shuffle=SHUFFLE, **options)
    except Exception as error:
        if job.weights == "pretrained" and "Hub" in str(error):
            raise JobError(
                f"could not download the pretrained backbone weights ({error}). Offline, set "
                "DLC_BACKBONE_WEIGHTS=none (from scratch) or the path of a .pt snapshot",
                EXIT_TRAINING,
            ) from error
        raise


def _untrained_snapshot(config: Path, job: JobConfig) -> Path:
    """A snapshot of the model with random weights: training starts from it instead of the hub's weights.

    DeepLabCut 3 loads ImageNet backbone weights from its hub unless training starts from a snapshot;
    offline (sandbox, tests), this snapshot is how it trains from scratch with DeepLabCut's own code path.
    """
    import torch
    from deeplabcut.pose_estimation_pytorch.data import DLCLoader
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    loader = DLCLoader(config=str(config), shuffle=SHUFFLE, trainset_index=0)
    model = PoseModel.build(loader.model_cfg["model"], pretrained_backbone=False)
    path = job.workdir / "untrained-snapshot.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def _labels_to_h5(config: Path) -> None:
    """DeepLabCut trains from CollectedData_*.h5; a project zipped with only the CSV gets it converted."""
    labeled = config.parent / "labeled-data"
    folders = [f for f in labeled.iterdir() if f.is_dir()]
    if any(not list(f.glob("CollectedData_*.h5")) and list(f.glob("CollectedData_*.csv")) for f in folders):
        import deeplabcut

        print("[train] converting CSV labels to H5", flush=True)
        deeplabcut.convertcsv2h5(str(config), userfeedback=False)


# ------------------------------------------------------------------------------------------ step 3


def export_dlc_model_s3(s3, config: Path, job: JobConfig) -> dict:
    """Evaluate, export, upload; return the manifest (also uploaded as manifest.json, last)."""
    import deeplabcut

    # plotting=True: the article's evaluation figures (DeepLabCut 3 `evaluate_network` writes them under
    # evaluation-results-pytorch/iteration-*/<model>/LabeledImages_<scorer>/, Training-* and Test-*)
    deeplabcut.evaluate_network(str(config), Shuffles=[SHUFFLE], plotting=True)
    deeplabcut.export_model(str(config), shuffle=SHUFFLE)
    project = config.parent
    outputs = {
        "model": project / "exported-models-pytorch",
        "evaluation": project / "evaluation-results-pytorch",
        "training": _train_folder(project),
    }
    uploaded = []
    for kind, folder in outputs.items():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if kind == "training" and path.suffix != ".csv" and path.name != "pytorch_config.yaml":
                continue  # snapshots are exported under model/; keep logs and the learning curve
            key = f"{job.output_prefix}{kind}/{path.relative_to(folder).as_posix()}"
            _upload(s3, path, job.output_bucket, key)
            uploaded.append({"key": key, "bytes": path.stat().st_size, "sha256": _sha256(path)})
    manifest = {
        "project": f"s3://{job.bucket}/{job.project_key}",
        "deeplabcut_version": deeplabcut.__version__,
        "net_type": job.net_type,
        "epochs": job.epochs,
        "batch_size": job.batch_size,
        "backbone_weights": job.weights,
        "metrics": evaluation_metrics(project),
        "learning_curve": learning_curve(project),
        "evaluation_plots": evaluation_plot_keys(uploaded),
        "timings_s": job.timings,
        "files": uploaded,
    }
    body = json.dumps(manifest, indent=2).encode()
    try:
        s3.put_object(Bucket=job.output_bucket, Key=f"{job.output_prefix}manifest.json", Body=body)
    except Exception as error:
        raise JobError(f"could not write the manifest: {error}", EXIT_S3) from error
    return manifest


def _train_folder(project: Path) -> Path:
    trains = sorted(project.glob("dlc-models-pytorch/iteration-*/*/train"))
    return trains[-1] if trains else project / "dlc-models-pytorch"


def evaluation_metrics(project: Path) -> dict[str, float]:
    """Train / test RMSE (px) and friends from DeepLabCut's CombinedEvaluation-results.csv (last row)."""
    import pandas as pd

    results = sorted(project.glob("evaluation-results-pytorch/iteration-*/CombinedEvaluation-results.csv"))
    if not results:
        raise JobError("evaluate_network wrote no CombinedEvaluation-results.csv", EXIT_EXPORT)
    row = pd.read_csv(results[-1]).iloc[-1]
    return {  # NaN (no prediction above pcutoff) becomes null: the manifest stays strict JSON
        str(name).strip(): (None if math.isnan(value) else float(value))
        for name, value in row.items()
        if isinstance(value, (int, float)) and not str(name).startswith("Unnamed")
    }


def evaluation_plot_keys(uploaded: list[dict]) -> dict[str, list[str]]:
    """The S3 keys of DeepLabCut's evaluation plots by split (its names: Training-<video>-<image>, Test-…)."""
    plots: dict[str, list[str]] = {"train": [], "test": []}
    for item in uploaded:
        key = item["key"]
        folder, _, name = key.rpartition("/")
        in_plots = "/evaluation/" in f"/{key}" and "/LabeledImages_" in f"/{folder}"
        if not in_plots or not name.endswith(".png"):
            continue
        if name.startswith("Training-"):
            plots["train"].append(key)
        elif name.startswith("Test-"):
            plots["test"].append(key)
    return plots


def learning_curve(project: Path) -> list[dict[str, float]]:
    """Per-epoch losses from learning_stats.csv, for the run report's figure."""
    import pandas as pd

    stats = sorted(project.glob("dlc-models-pytorch/iteration-*/*/train/learning_stats.csv"))
    if not stats:
        return []
    table = pd.read_csv(stats[-1])
    keep = [c for c in table.columns if c == "step" or "loss" in c]
    return [
        {k: float(v) for k, v in row.items() if not math.isnan(v)} for row in table[keep].to_dict("records")
    ]


def _upload(s3, path: Path, bucket: str, key: str) -> None:
    try:
        s3.upload_file(str(path), bucket, key)
    except Exception as error:
        raise JobError(f"could not upload {path.name} to s3://{bucket}/{key}: {error}", EXIT_S3) from error


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ main


def run(env: dict[str, str]) -> dict:
    import boto3

    job = JobConfig.from_env(env)
    try:
        return _run_steps(boto3.client("s3"), job)
    finally:
        if job.temporary_workdir:
            shutil.rmtree(job.workdir, ignore_errors=True)


def _run_steps(s3, job: JobConfig) -> dict:
    config = _step(job, "import", EXIT_S3, lambda: import_dlc_zip_project(s3, job))
    _step(job, "train", EXIT_TRAINING, lambda: train_dlc_model(config, job))
    return _step(job, "export", EXIT_EXPORT, lambda: export_dlc_model_s3(s3, config, job))


def _step(job: JobConfig, name: str, exit_code: int, action):
    """Run one step, timed; an unexpected exception becomes a JobError with the step's exit code."""
    started = time.monotonic()
    try:
        result = action()
    except JobError:
        raise
    except Exception as error:
        raise JobError(f"{name} failed: {type(error).__name__}: {error}", exit_code) from error
    job.timings[name] = round(time.monotonic() - started, 2)
    print(f"[{name}] done in {job.timings[name]:.1f} s", flush=True)
    return result


def main() -> int:
    try:
        manifest = run(dict(os.environ))
    except JobError as error:
        traceback.print_exc()
        print(f"dlc_train: FAILED (exit {error.exit_code}): {error}", file=sys.stderr, flush=True)
        return error.exit_code
    print(f"dlc_train: model exported, metrics {json.dumps(manifest['metrics'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
