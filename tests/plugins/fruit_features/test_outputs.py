"""orchard.fruit_features.outputs: the step's output checked, the scaling figures, the exported model."""

from __future__ import annotations

import io
import json

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from orchard.fruit_features import outputs
from tests.plugins.fruit_features.test_plan import PARAMS


@pytest.fixture
def s3(monkeypatch):
    # moto in-process, not the session's sandbox (whose AWS_ENDPOINT_URL would take mock_aws's fake key)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="data")
        yield client


def write_output(s3, rows: int, readable: int, k: int = 2):
    table = pa.table(
        {
            "path": [f"apple/{i}.jpg" for i in range(rows)],
            "label": ["apple"] * rows,
            "features": pa.array([[0.5] * 1280] * rows, pa.list_(pa.float32())),
            "pca": pa.array([[1.0] * k] * rows, pa.list_(pa.float64())),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3.put_object(Bucket="data", Key="out/features/part-0.parquet", Body=buffer.getvalue())
    metrics = {
        "images_found": readable + 1,
        "images_readable": readable,
        "corrupt_count": 1,
        "corrupt": [{"path": "apple/bad.jpg", "error": "OSError: truncated"}],
        "pca_k": k,
        "explained_variance": 0.95,
        "explained_variance_curve": [0.6, 0.95],
        "model": "efficientnet_lite0",
        "weights": "wheel",
    }
    s3.put_object(Bucket="data", Key="out/metrics.json", Body=json.dumps(metrics))


def test_the_output_check_reads_parquet_footers_and_lists_corrupt_images(s3):
    write_output(s3, rows=3, readable=3)
    planned = {"params": {**PARAMS, "images_prefix": "s3://data/fruits/"}, "images": {"count": 4}}

    checked = outputs.check_output(s3, planned, "s3://data/out/")

    assert checked["rows"] == 3 and checked["pca_k"] == 2
    assert checked["corrupt"] == ["s3://data/fruits/apple/bad.jpg: OSError: truncated"]


def test_the_output_check_fails_when_rows_are_missing(s3):
    write_output(s3, rows=2, readable=3)
    planned = {"params": {**PARAMS}, "images": {"count": 4}}

    with pytest.raises(outputs.OutputError, match="2 parquet rows but the job read 3 images"):
        outputs.check_output(s3, planned, "s3://data/out/")


def test_speedups_are_relative_to_the_smallest_cluster():
    rows = outputs.speedups([{"core_nodes": 4, "step_wall_s": 50.0}, {"core_nodes": 2, "step_wall_s": 80.0}])
    assert [(r["core_nodes"], r["speedup"], r["efficiency"]) for r in rows] == [(2, 1.0, 1.0), (4, 1.6, 0.8)]


def test_one_core_node_count_gives_its_record_itself_and_the_report_still_has_its_row():
    """Issue 13.1: with the default core_node_counts=[2] the mapped group's XCom is the record (a dict),
    not a list of records; publish_report failed with a TypeError after the cluster had run."""
    record = {"core_nodes": 2, "step_wall_s": 40.0}
    assert outputs.scaling_records(record) == [record]
    assert [(r["core_nodes"], r["speedup"]) for r in outputs.speedups(record)] == [(2, 1.0)]
    assert outputs.scaling_records(iter([record, {**record, "core_nodes": 4}]))[1]["core_nodes"] == 4
    with pytest.raises(ValueError, match="one scaling record"):
        outputs.scaling_records(["j-1"])


@pytest.fixture
def sandbox_s3(aws):
    """The session's sandbox: exported_model gets its client from orchard.aws (the Airflow connection)."""
    client = boto3.client("s3")
    client.create_bucket(Bucket="data")
    return client


MODEL = {"uri": "s3://data/models/m/v1/model.onnx", "prefix": "s3://data/models/m/v1/", "exists": True}


def test_the_exported_model_is_read_with_what_the_export_measured(sandbox_s3):
    s3 = sandbox_s3
    s3.put_object(Bucket="data", Key="models/m/v1/model.onnx", Body=b"onnx")
    info = {"model": "efficientnet_lite0", "weights": "wheel", "max_abs_diff": 1e-6}
    s3.put_object(Bucket="data", Key="models/m/v1/model.json", Body=json.dumps(info))

    assert outputs.exported_model(MODEL) == {**MODEL, "info": info}


def test_a_model_missing_after_the_export_fails_naming_it(sandbox_s3):
    with pytest.raises(
        FileNotFoundError, match="s3://data/models/m/v1/model.onnx is missing after the export"
    ):
        outputs.exported_model(MODEL)


def test_the_model_and_what_the_export_measured_are_read_at_once(s3, monkeypatch):
    """model.onnx's listing and model.json's GET answer only once both are in flight (one by one: timeout)."""
    import orchard.aws
    from tests.plugins.fruit_features.gates import Gated, barrier

    s3.put_object(Bucket="data", Key="models/m/v1/model.onnx", Body=b"onnx")
    info = {"model": "efficientnet_lite0", "weights": "wheel", "max_abs_diff": 1e-6}
    s3.put_object(Bucket="data", Key="models/m/v1/model.json", Body=json.dumps(info))
    gated = Gated(s3, barrier(2), lambda name, _: name in ("list_objects_v2", "get_object"))
    monkeypatch.setattr(orchard.aws, "client", lambda service, conn_id=None: gated)

    assert outputs.exported_model(MODEL) == {**MODEL, "info": info}


class _Emr:
    """DescribeStep of one COMPLETED step (a fake: moto's steps have no end time)."""

    def describe_step(self, ClusterId, StepId):
        from datetime import UTC, datetime

        timeline = {
            "StartDateTime": datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC),
            "EndDateTime": datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC),
        }
        return {"Step": {"Id": StepId, "Status": {"State": "COMPLETED", "Timeline": timeline}}}


def test_the_scaling_record_reads_the_step_and_its_metrics_at_once(s3):
    """DescribeStep and metrics.json's GET answer only once both are in flight."""
    from tests.plugins.fruit_features.gates import Gated, barrier

    metrics = {"images_found": 60, "images_per_second": 4.0, "default_parallelism": 2, "timings": {}}
    s3.put_object(Bucket="data", Key="out/metrics.json", Body=json.dumps(metrics))
    both = barrier(2)
    emr = Gated(_Emr(), both, lambda name, _: name == "describe_step")
    gated_s3 = Gated(s3, both, lambda name, _: name == "get_object")

    record = outputs.scaling_record(
        emr, gated_s3, "j-1", "s-1", {"core_nodes": 2, "output": "s3://data/out/"}
    )

    assert (record["step_wall_s"], record["images"], record["images_per_s"]) == (30.0, 60, 2.0)


def is_tail_read(kwargs: dict) -> bool:
    """A footer's first read: the part's last 8 bytes (footer length + PAR1)."""
    first, _, last = kwargs.get("Range", "bytes=0-0").removeprefix("bytes=").partition("-")
    return int(last) - int(first) == 7


def test_the_parquet_footers_are_read_at_once(s3):
    """Each part's footer read (its tail GET) answers only once the three parts' are in flight."""
    from tests.plugins.fruit_features.gates import Gated, barrier

    write_output(s3, rows=1, readable=3)
    for part in (1, 2):
        source = {"Bucket": "data", "Key": "out/features/part-0.parquet"}
        s3.copy_object(Bucket="data", Key=f"out/features/part-{part}.parquet", CopySource=source)
    tail_reads = Gated(s3, barrier(3), lambda name, kwargs: name == "get_object" and is_tail_read(kwargs))
    planned = {"params": {**PARAMS, "images_prefix": "s3://data/fruits/"}, "images": {"count": 4}}

    checked = outputs.check_output(tail_reads, planned, "s3://data/out/")

    assert (checked["rows"], checked["parquet_files"]) == (3, 3)
