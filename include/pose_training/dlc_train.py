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

Exit codes: 0 done, 2 bad input (a variable or the project; nothing to retry), 3 S3 read/write failed,
4 training failed, 5 evaluation or export failed. The exception's text and traceback go to stderr,
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

EXIT_BAD_INPUT, EXIT_S3, EXIT_TRAINING, EXIT_EXPORT = 2, 3, 4, 5
SHUFFLE = 1


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
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> JobConfig:
        missing = [name for name in ("TGT_S3_BUCKET", "DLC_PROJECT_PATH", "OUTPUT_PATH") if not env.get(name)]
        if missing:
            raise JobError(f"missing environment variable(s) {', '.join(missing)}: set them in the job "
                           "definition or the job's container overrides", EXIT_BAD_INPUT)
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
        )


def _output_location(bucket: str, output_path: str) -> tuple[str, str]:
    """OUTPUT_PATH is a prefix in TGT_S3_BUCKET (the seed's contract) or a full s3:// URI."""
    if output_path.startswith("s3://"):
        out_bucket, _, prefix = output_path[len("s3://"):].partition("/")
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
        raise JobError(f"DLC_TRAIN_CROP={raw!r} is not <width>x<height> (each >= 32), e.g. 96x80", EXIT_BAD_INPUT)
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
        raise JobError(f"could not download s3://{job.bucket}/{job.project_key}: {error}", EXIT_S3) from error
    target = job.workdir / "project"
    safe_extract(archive, target)
    archive.unlink()
    config = find_config(target)
    _set_project_path(config)
    print(f"[import] project at {config.parent}", flush=True)
    return config


def safe_extract(archive: Path, target: Path) -> None:
    """Extract members one by one, refusing absolute paths, `..`, links and devices (zip-slip)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise JobError(f"the project is not a zip file ({error}): upload `zip -r project.zip <project>`",
                       EXIT_BAD_INPUT) from error
    root = target.resolve()
    with zf:
        for member in zf.infolist():
            name = member.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the zip tool recorded no type
            if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
                raise JobError(f"unsafe path {name!r} in the zip: paths must stay inside the project",
                               EXIT_BAD_INPUT)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise JobError(f"{name!r} in the zip is a link or special file: zip with `zip -r` (no -y)",
                               EXIT_BAD_INPUT)
            destination = (root / Path(*parts)).resolve()
            if not destination.is_relative_to(root):
                raise JobError(f"unsafe path {name!r} in the zip", EXIT_BAD_INPUT)
            if member.is_dir():
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
        raise JobError("no config.yaml in the project zip: zip the whole DeepLabCut project folder",
                       EXIT_BAD_INPUT)
    return candidates[0]


def _set_project_path(config: Path) -> None:
    from deeplabcut.utils import auxiliaryfunctions

    auxiliaryfunctions.edit_config(str(config), {"project_path": str(config.parent)})


# ------------------------------------------------------------------------------------------ step 2


def train_dlc_model(config: Path, job: JobConfig) -> None:
    import deeplabcut

    _labels_to_h5(config)
    if not any((config.parent / "training-datasets").glob("**/*.mat")) and not any(
        (config.parent / "training-datasets").glob("**/*.pickle")
    ):
        print(f"[train] creating the training dataset ({job.net_type})", flush=True)
        deeplabcut.create_training_dataset(str(config), num_shuffles=1, net_type=job.net_type, userfeedback=False)
    options: dict = {"epochs": job.epochs, "batch_size": job.batch_size, "save_epochs": job.epochs}
    if job.weights == "none":
        options["snapshot_path"] = str(_untrained_snapshot(config, job))
    elif job.weights != "pretrained":
        if not Path(job.weights).is_file():
            raise JobError(f"DLC_BACKBONE_WEIGHTS={job.weights!r}: no such snapshot file (use pretrained, none "
                           "or the path of a .pt snapshot)", EXIT_BAD_INPUT)
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
            raise JobError(f"could not download the pretrained backbone weights ({error}). Offline, set "
                           "DLC_BACKBONE_WEIGHTS=none (from scratch) or the path of a .pt snapshot",
                           EXIT_TRAINING) from error
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
    return [{k: float(v) for k, v in row.items() if not math.isnan(v)} for row in table[keep].to_dict("records")]


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
