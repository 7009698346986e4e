"""check_export believes the job's manifest only as far as S3 agrees; the report carries the figures."""

from __future__ import annotations

import json

import boto3
import pytest

from orchard.pose_training.report import ExportIncomplete, billable_seconds, build_report, check_export

BUCKET, PREFIX = "artifacts", "pose_training/run-1/model/"
FILES = {
    f"{PREFIX}model/export/snapshot-2.pt": b"weights",
    f"{PREFIX}evaluation/iteration-0/CombinedEvaluation-results.csv": b"csv",
}


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def export(s3, files=FILES, metrics=None, listed=None) -> dict:
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    listed = listed if listed is not None else files
    manifest = {
        "net_type": "resnet_50", "epochs": 2, "batch_size": 4, "backbone_weights": "none",
        "metrics": {"test rmse": 4.5, "train rmse": 3.0} if metrics is None else metrics,
        "learning_curve": [{"step": 1, "losses/train.total_loss": 0.3}, {"step": 2, "losses/train.total_loss": 0.1}],
        "files": [{"key": k, "bytes": len(b)} for k, b in listed.items()],
    }
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}manifest.json", Body=json.dumps(manifest).encode())
    return manifest


def test_a_complete_export_passes_and_its_report_has_metrics_curve_link_and_cost(s3):
    manifest = export(s3)
    assert check_export(s3, BUCKET, PREFIX) == manifest

    job = {"jobId": "abc-123", "jobName": "pose_training-run-1",
           "attempts": [{"startedAt": 1_000, "stoppedAt": 601_000}, {"startedAt": 700_000, "stoppedAt": 1_300_000}]}
    run = {"dag_id": "pose_training", "run_id": "manual__2026-11-21T10:00:00+00:00", "project_uri": "s3://d/p.zip",
           "source": "manual", "output_uri": f"s3://{BUCKET}/{PREFIX}", "labeled_frames": 8}
    batch = {"instance_type": "g4dn.xlarge", "capacity": "SPOT"}
    report = build_report(run, manifest, job, batch, "us-east-1")

    assert billable_seconds(job) == 1200.0  # both attempts: a spot retry is billed too
    assert report.metrics["test rmse"] == 4.5 and report.metrics["labeled frames"] == 8
    assert "learning_curve" in report.figures
    markdown = report.to_markdown()
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
    ],
)
def test_an_incomplete_export_is_refused(s3, case, message):
    if case == "truncated":
        export(s3, listed={**FILES, f"{PREFIX}model/export/snapshot-2.pt": b"weights and more"})
    elif case == "no model":
        export(s3, files={k: v for k, v in FILES.items() if not k.endswith(".pt")})
    elif case == "no metrics":
        export(s3, metrics={})
    with pytest.raises(ExportIncomplete, match=message):
        check_export(s3, BUCKET, PREFIX)
