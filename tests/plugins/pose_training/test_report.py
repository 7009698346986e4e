"""orchard.pose_training.report: check_export believes the job's manifest only as far as S3 agrees; the report carries the figures."""

from __future__ import annotations

import hashlib
import io
import json

import boto3
import pytest

from orchard.pose_training.report import (
    ExportIncomplete,
    billable_seconds,
    build_report,
    check_export,
    evaluation_plots,
    models_extra,
)

BUCKET, PREFIX = "artifacts", "pose_training/run-1/model/"


def png(colour: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


TRAIN_PNG, TEST_PNG = png("red"), png("blue")
PLOTS = f"{PREFIX}evaluation/iteration-0/tinyNov21-trainset75shuffle1/LabeledImages_DLC_Resnet50_snapshot-2/"
FILES = {
    f"{PREFIX}model/export/snapshot-2.pt": b"weights",
    f"{PREFIX}evaluation/iteration-0/CombinedEvaluation-results.csv": b"csv",
    f"{PLOTS}Training-tinymouse-img000.png": TRAIN_PNG,
    f"{PLOTS}Test-tinymouse-img002.png": TEST_PNG,
}


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def export(s3, files=FILES, metrics=None, listed=None, plots=None) -> dict:
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    listed = listed if listed is not None else files
    manifest = {
        "net_type": "resnet_50",
        "epochs": 2,
        "batch_size": 4,
        "backbone_weights": "none",
        "metrics": {"test rmse": 4.5, "train rmse": 3.0} if metrics is None else metrics,
        "learning_curve": [
            {"step": 1, "losses/train.total_loss": 0.3},
            {"step": 2, "losses/train.total_loss": 0.1},
        ],
        "files": [{"key": k, "bytes": len(b)} for k, b in listed.items()],
        "evaluation_plots": {
            "train": [f"{PLOTS}Training-tinymouse-img000.png"],
            "test": [f"{PLOTS}Test-tinymouse-img002.png"],
        }
        if plots is None
        else plots,
    }
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}manifest.json", Body=json.dumps(manifest).encode())
    return manifest


def test_a_complete_export_passes_and_its_report_has_metrics_curve_link_and_cost(s3):
    manifest = export(s3)
    assert check_export(s3, BUCKET, PREFIX) == manifest

    job = {
        "jobId": "abc-123",
        "jobName": "pose_training-run-1",
        "attempts": [
            {"startedAt": 1_000, "stoppedAt": 601_000},
            {"startedAt": 700_000, "stoppedAt": 1_300_000},
        ],
    }
    run = {
        "dag_id": "pose_training",
        "run_id": "manual__2026-11-21T10:00:00+00:00",
        "project_uri": "s3://d/p.zip",
        "key": "p.zip",
        "source": "manual",
        "output_uri": f"s3://{BUCKET}/{PREFIX}",
        "labeled_frames": 8,
    }
    batch = {"instance_type": "g4dn.xlarge", "capacity": "SPOT"}
    plots = evaluation_plots(s3, BUCKET, manifest)
    assert plots == {"evaluation_train_1": TRAIN_PNG, "evaluation_test_1": TEST_PNG}
    report = build_report(run, manifest, job, batch, "us-east-1", plots=plots)

    assert billable_seconds(job) == 1200.0  # both attempts: a spot retry is billed too
    assert report.metrics["test rmse"] == 4.5 and report.metrics["labeled frames"] == 8
    assert "learning_curve" in report.figures
    assert report.figures["evaluation_test_1"] == TEST_PNG  # DeepLabCut's own evaluation plot
    markdown = report.to_markdown()
    assert "figures/evaluation_train_1.png" in markdown and "1 train and 1 test plots" in markdown
    # each project of a run has its own report folder (a run can train several uploads)
    assert report.key_prefix("reports/").startswith("reports/pose_training/manual-20261121t100000-")
    assert report.key_prefix("reports/").endswith(f"/p-{hashlib.sha256(b'p.zip').hexdigest()[:8]}/")
    assert "batch/home?region=us-east-1#jobs/detail/abc-123" in markdown
    assert report.cost_usd == pytest.approx(0.526 * 1200 / 3600, abs=1e-6)
    assert "upper bound for this SPOT capacity" in markdown


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no manifest", "no manifest.json"),
        ("truncated", "missing or truncated"),
        ("no model", r"no exported model"),
        ("no metrics", "no evaluation metrics"),
        ("no plots", "no evaluation plots"),
        ("plot not exported", "evaluation plots not among the exported files"),
    ],
)
def test_an_incomplete_export_is_refused(s3, case, message):
    if case == "truncated":
        export(s3, listed={**FILES, f"{PREFIX}model/export/snapshot-2.pt": b"weights and more"})
    elif case == "no model":
        export(s3, files={k: v for k, v in FILES.items() if not k.endswith(".pt")})
    elif case == "no metrics":
        export(s3, metrics={})
    elif case == "no plots":
        export(s3, plots={"train": [], "test": []})
    elif case == "plot not exported":
        export(s3, plots={"train": [f"{PLOTS}Training-elsewhere.png"], "test": []})
    with pytest.raises(ExportIncomplete, match=message):
        check_export(s3, BUCKET, PREFIX)


def test_the_models_asset_extra_names_the_model_its_report_and_test_rmse():
    exported = {
        "project_uri": "s3://data/pose-training/projects/mouse.zip",
        "model_uri": "s3://artifacts/pose_training/run-1/mouse/model/",
        "report_uri": "s3://reports/pose_training/run-1/mouse/report.md",
        "metrics": {"train rmse": 2.0, "test rmse": 3.5},
    }

    assert models_extra(exported) == {
        "model_uri": exported["model_uri"],
        "report_uri": exported["report_uri"],
        "project_uri": exported["project_uri"],
        "test_rmse": 3.5,
    }
