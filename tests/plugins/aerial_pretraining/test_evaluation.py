"""The evaluation: each probe's metrics.json from its model.tar.gz, side by side in evaluation.json."""

from __future__ import annotations

import io
import json
import tarfile
import threading

import boto3
import pytest
from moto import mock_aws

from orchard.aerial_pretraining.evaluation import evaluate, read_evaluation
from tests.plugins.aerial_pretraining.samples import RUN_ID

BUCKET = "orchard-artifacts"


def _model_tar(metrics: dict) -> bytes:
    body, buffer = json.dumps(metrics).encode(), io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("metrics.json")
        member.size = len(body)
        archive.addfile(member, io.BytesIO(body))
    return buffer.getvalue()


def _probe(s3, backbone: str, macro: float, micro: float) -> dict:
    key = f"models/probe-{backbone}/output/model.tar.gz"
    metrics = {"backbone": backbone, "macro_mAP": macro, "micro_AP": micro, "per_class_AP": {"Urban": macro}}
    s3.put_object(Bucket=BUCKET, Key=key, Body=_model_tar(metrics))
    return {
        "Training": {
            "TrainingJobName": f"probe-{backbone}",
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{key}"},
        }
    }


@pytest.fixture
def s3(in_process_moto):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_both_probes_side_by_side_in_evaluation_json_and_a_summary_for_xcom(s3):
    probes = [_probe(s3, "baseline", 0.685, 0.80), _probe(s3, "aerial-dino", 0.732, 0.83)]
    summary = evaluate(s3, probes, RUN_ID, BUCKET)

    assert summary["new_mAP"] == 0.732 and summary["baseline_mAP"] == 0.685
    assert (summary["new_micro_AP"], summary["baseline_micro_AP"]) == (0.83, 0.80)
    assert (
        summary["evaluation_uri"].startswith(f"s3://{BUCKET}/")
        and "evaluation.json" in summary["evaluation_uri"]
    )
    stored = read_evaluation(s3, summary)
    assert set(stored) == {"aerial-dino", "baseline"}
    assert stored["aerial-dino"]["job"] == "probe-aerial-dino" and stored["baseline"]["per_class_AP"] == {
        "Urban": 0.685
    }


class _S3AnsweringOnlyConcurrentGets:
    """get_object answers only once every expected GET is in flight (a barrier): reads one by one time out."""

    def __init__(self, client, expected: int):
        self.client, self.barrier = client, threading.Barrier(expected, timeout=10)

    def get_object(self, **kwargs):
        self.barrier.wait()
        return self.client.get_object(**kwargs)

    def put_object(self, **kwargs):
        return self.client.put_object(**kwargs)


def test_the_probes_archives_are_read_at_once(s3):
    probes = [_probe(s3, "baseline", 0.685, 0.80), _probe(s3, "aerial-dino", 0.732, 0.83)]

    summary = evaluate(_S3AnsweringOnlyConcurrentGets(s3, expected=2), probes, RUN_ID, BUCKET)

    assert (summary["new_mAP"], summary["baseline_mAP"]) == (0.732, 0.685)
