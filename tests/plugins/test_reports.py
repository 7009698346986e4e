"""orchard.reports: markdown, real PNG figures, console links, cost table, publish to S3 (moto)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from orchard import naming, pricing
from orchard.reports import PNG_MAGIC, CostLine, Report, console_url, new_figure

DAG_ID = "pose_training"
RUN_ID = "asset_triggered__2026-11-21T10:00:00.123456+00:00_AbCdEf12"
REGION = "us-east-1"


@pytest.fixture
def s3_mock(monkeypatch):
    """moto in-process S3, whatever endpoint or credentials other fixtures left in the environment."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)


def loss_figure():
    fig = new_figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot([1.0, 0.6, 0.4, 0.3], label="train loss")
    ax.legend()
    return fig


def sample_report() -> Report:
    report = Report("Pose training", DAG_ID, RUN_ID, generated_at=datetime(2026, 11, 21, 10, 5, tzinfo=UTC))
    report.add_text("Trained DeepLabCut on **1,200** frames.")
    report.add_metrics({"test RMSE (px)": 4.2123456, "images": 1200, "note": "a|b"})
    report.add_table(
        [["left_ear", 3.1], {"keypoint": "right_ear", "RMSE": 5.0}],
        ["keypoint", "RMSE"],
        title="Per keypoint",
    )
    report.add_figure("Loss curve", loss_figure(), caption="Training loss per epoch")
    report.add_console_link("batch_job", "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab", REGION)
    report.add_console_link("sagemaker_training_job", "pose-training-manual-x-1234567890", REGION)
    report.add_cost(
        [
            {"job": "train", "service": "batch", "instance_type": "g4dn.xlarge", "billable_seconds": 1800},
            CostLine("evaluate", "sagemaker", "ml.m5.xlarge", 600, instance_count=2, region=REGION),
        ],
        region=REGION,
    )
    return report


def test_markdown_layout():
    text = sample_report().to_markdown()
    assert text.startswith("# Pose training\n")
    assert f"`{RUN_ID}`" in text and "2026-11-21 10:05 UTC" in text
    assert "| test RMSE (px) | 4.212 |" in text
    assert "| note | a\\|b |" in text, "pipes inside cells must be escaped"
    assert "## Per keypoint" in text and "| right_ear | 5 |" in text
    assert "![Training loss per epoch](figures/loss-curve.png)" in text
    assert "## AWS console" in text
    assert "## Estimated cost" in text and pricing.PRICES_AS_OF in text


def test_cost_table_arithmetic():
    report = sample_report()
    expected = 0.526 * 1800 / 3600 + 0.23 * 2 * 600 / 3600
    assert report.cost_usd == pytest.approx(expected)
    text = report.to_markdown()
    assert "| train | batch | g4dn.xlarge | 1 | 1,800 | $0.5260 | $0.26 |" in text
    assert "| evaluate | sagemaker | ml.m5.xlarge | 2 | 600 | $0.2300 | $0.08 |" in text
    assert f"**${expected:,.2f}**" in text


def test_cost_with_an_unpriced_line_is_a_lower_bound():
    report = Report("r", DAG_ID, RUN_ID)
    report.add_cost(
        [
            CostLine("a", "ec2", "m5.xlarge", 3600, region=REGION),
            CostLine("b", "ec2", "x9.huge", 3600, region=REGION),
        ]
    )
    text = report.to_markdown()
    assert report.cost_usd == pytest.approx(0.192)
    assert "| b | ec2 | x9.huge | 1 | 3,600 | n/a | n/a |" in text
    assert "**≥ $0.19**" in text and "no price: b:" in text


def test_cost_line_needs_a_region():
    with pytest.raises(ValueError, match="region"):
        Report("r", DAG_ID, RUN_ID).add_cost(
            [{"job": "a", "service": "ec2", "instance_type": "m5.xlarge", "billable_seconds": 1}]
        )


@pytest.mark.parametrize(
    ("service", "resource", "region", "expected"),
    [
        (
            "batch_job",
            "job-id-1",
            "us-east-1",
            "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/job-id-1",
        ),
        (
            "sagemaker_training_job",
            "t1",
            "eu-west-1",
            "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/t1",
        ),
        (
            "sagemaker_processing_job",
            "p1",
            "us-east-1",
            "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/processing-jobs/p1",
        ),
        (
            "sagemaker_transform_job",
            "x1",
            "us-east-1",
            "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/transform-jobs/x1",
        ),
        (
            "sagemaker_endpoint",
            "e1",
            "eu-west-3",
            "https://eu-west-3.console.aws.amazon.com/sagemaker/home?region=eu-west-3#/endpoints/e1",
        ),
        (
            "emr_cluster",
            "j-ABC123",
            "us-east-1",
            "https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1#/clusterDetails/j-ABC123",
        ),
        (
            "iot_job",
            "deploy-1",
            "us-east-1",
            "https://us-east-1.console.aws.amazon.com/iot/home?region=us-east-1#/job/deploy-1",
        ),
        (
            "sagemaker_endpoint",
            "e1",
            "cn-north-1",
            "https://console.amazonaws.cn/sagemaker/home?region=cn-north-1#/endpoints/e1",
        ),
    ],
)
def test_console_urls(service, resource, region, expected):
    assert console_url(service, resource, region) == expected


def test_console_url_errors():
    with pytest.raises(ValueError, match="known"):
        console_url("lambda_function", "f", REGION)
    with pytest.raises(ValueError, match="region"):
        console_url("batch_job", "id", "")


def test_figures_are_real_pngs_and_names_are_checked():
    report = sample_report()
    png = report.figures["loss-curve"]
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    with pytest.raises(ValueError, match="already"):
        report.add_figure("loss curve", png)
    with pytest.raises(ValueError, match="PNG"):
        report.add_figure("fake", b"GIF89a...")
    with pytest.raises(TypeError):
        report.add_figure("nope", object())  # type: ignore[arg-type]
    report.add_figure("as-bytes.png", png)
    assert "figures/as-bytes.png" in report.to_markdown()


def zlib_level_of_png(png: bytes) -> int:
    """FLEVEL of the first IDAT chunk's zlib header (RFC 1950): 0 fastest, 1 fast, 2 default, 3 maximum."""
    offset = len(PNG_MAGIC)
    while True:
        length = int.from_bytes(png[offset : offset + 4], "big")
        if png[offset + 4 : offset + 8] == b"IDAT":
            return png[offset + 9] >> 6  # the FLG byte, after CMF
        offset += 12 + length


def test_figures_are_encoded_fast_with_the_same_pixels():
    """Issue 17.1: the report's PNG encoding is on every pipeline's critical path (auto_labeling's grid of
    six photos: 1.9 s at zlib's default level 6, 0.9 s at level 1, benchmarks/report_png_encoding.py). The
    figure keeps its pixels, size and mode: only the file is a little larger."""
    import io

    import numpy as np
    from PIL import Image

    figure = loss_figure()
    fast = Report("r", DAG_ID, RUN_ID).add_figure("loss", figure).figures["loss"]
    default = io.BytesIO()
    figure.savefig(default, format="png", dpi=110, bbox_inches="tight")

    assert zlib_level_of_png(fast) == 0  # zlib's "fastest" (levels 0-1); it was 2, the default
    assert zlib_level_of_png(default.getvalue()) == 2
    with Image.open(io.BytesIO(fast)) as mine, Image.open(default) as theirs:
        assert (mine.size, mine.mode) == (theirs.size, theirs.mode)
        assert np.array_equal(np.asarray(mine), np.asarray(theirs))


def test_a_pyplot_figure_renders_with_agg():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    try:
        report = Report("r", DAG_ID, RUN_ID).add_figure("bars", fig)
    finally:
        plt.close(fig)
    assert report.figures["bars"].startswith(PNG_MAGIC)


def test_importing_reports_does_not_import_matplotlib():
    code = "import orchard.reports, sys; sys.exit('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd="plugins", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bad_ids_are_rejected_early():
    with pytest.raises(ValueError, match="run_id"):
        Report("r", DAG_ID, "")


def test_publish_to_s3_with_a_boto3_client(s3_mock):
    s3 = s3_mock
    s3.create_bucket(Bucket="orchard-artifacts")
    report = sample_report()

    uri = report.publish(s3, "orchard-artifacts", "/reports/")

    run_folder = naming.resource_name("s3_prefix", DAG_ID, RUN_ID)
    assert re.fullmatch(r"pose_training/asset-20261121t100000-abcdef12-[0-9a-f]{10}/", run_folder)
    base = f"reports/{run_folder}"
    assert uri == f"s3://orchard-artifacts/{base}report.md"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="orchard-artifacts")["Contents"]}
    assert keys == {f"{base}report.md", f"{base}report.json", f"{base}figures/loss-curve.png"}

    markdown = s3.get_object(Bucket="orchard-artifacts", Key=f"{base}report.md")
    assert markdown["ContentType"].startswith("text/markdown")
    text = markdown["Body"].read().decode()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["figures/loss-curve.png"]
    png = s3.get_object(Bucket="orchard-artifacts", Key=base + links[0])
    assert png["ContentType"] == "image/png"
    assert png["Body"].read().startswith(PNG_MAGIC)

    data = json.loads(s3.get_object(Bucket="orchard-artifacts", Key=f"{base}report.json")["Body"].read())
    assert data["metrics"]["images"] == 1200
    assert data["cost_usd"] == pytest.approx(report.cost_usd)
    assert data["figures"] == ["figures/loss-curve.png"]
    assert [link["service"] for link in data["links"]] == ["batch_job", "sagemaker_training_job"]


def test_publish_with_an_s3_hook_and_no_prefix(s3_mock):
    pytest.importorskip("airflow.providers.amazon.aws.hooks.s3")
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3_mock.create_bucket(Bucket="reports-bucket")
    hook = S3Hook(aws_conn_id=None, region_name=REGION)
    report = Report("r", "fruit_features", "scheduled__2026-11-21T00:00:00+00:00").add_text("hello")

    uri = report.publish(hook, "reports-bucket")

    assert uri.startswith("s3://reports-bucket/fruit_features/scheduled-20261121t000000-")
    key = uri.removeprefix("s3://reports-bucket/")
    assert hook.read_key(key, bucket_name="reports-bucket").startswith("# r\n")


def test_publish_writes_the_figures_and_report_json_at_once_then_report_md(s3_mock):
    """The figures and report.json are independent PutObjects: they wait here for each other, which one
    after the other never happens; report.md goes after all of them (it links the figures)."""
    import threading

    s3_mock.create_bucket(Bucket="orchard-artifacts")
    report = sample_report().add_figure("second", loss_figure())
    together, written = threading.Barrier(3, timeout=10), []

    class Client:
        def put_object(self, **kwargs):
            if not kwargs["Key"].endswith("report.md"):
                together.wait()
            s3_mock.put_object(**kwargs)
            written.append(kwargs["Key"].rsplit("/", 1)[-1])

    report.publish(Client(), "orchard-artifacts", "reports/")

    assert sorted(written[:3]) == ["loss-curve.png", "report.json", "second.png"]
    assert written[3:] == ["report.md"]
