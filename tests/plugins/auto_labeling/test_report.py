"""The run report's Ground Truth cost: its per-object price comes from orchard.pricing."""

from __future__ import annotations

from pathlib import Path

from orchard.auto_labeling.report import _add_costs
from orchard.pricing import unit_price
from orchard.reports import Report

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "auto_labeling.py"


def test_ground_truth_is_priced_per_labeled_object_from_orchard_pricing():
    report = Report("auto labeling", "auto_labeling", "manual__1")
    plan = {"owned": False, "region": "us-east-1"}  # someone else's endpoint: not this run's cost
    verified = {"job_name": "al-verify", "verified": 900, "adjusted": 80, "rejected": 20}

    _add_costs(report, plan, {}, verified)

    per_object = unit_price("groundtruth_object")
    assert per_object == 0.08
    text = report.to_markdown()
    assert (
        f"Ground Truth: 1000 objects × ${per_object:.2f} ≈ ${1000 * per_object:,.2f} (us-east-1 list price"
        in text
    )


def test_ground_truth_cost_counts_in_the_runs_total():
    """The total the Asset event, the run note and the Reports page show (cost_usd) includes Ground Truth's
    per-object charge, next to the endpoint's instance cost."""
    report = Report("auto labeling", "auto_labeling", "manual__1")
    plan = {"owned": True, "region": "us-east-1", "endpoint_name": "al-ep", "instance_type": "ml.g4dn.xlarge"}
    collected = {"endpoint_seconds": 3600}
    verified = {"job_name": "al-verify", "verified": 90, "adjusted": 8, "rejected": 2}

    _add_costs(report, plan, collected, {})
    endpoint_only = report.cost_usd
    report = Report("auto labeling", "auto_labeling", "manual__1")
    _add_costs(report, plan, collected, verified)

    assert endpoint_only > 0
    assert report.cost_usd == round(endpoint_only + 100 * unit_price("groundtruth_object"), 6)


def report_inputs(frames: int = 3) -> tuple[dict, dict, dict]:
    """A manifest of `frames` sample frames in the sandbox's artifacts bucket, and the plan, collected
    predictions and manifest summary publish_report is given."""
    import io
    import json

    import boto3
    from PIL import Image

    from orchard.auto_labeling.predictions import PRELABEL_ATTRIBUTE
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=settings.artifacts_bucket)
    png = io.BytesIO()
    Image.new("RGB", (64, 36), (90, 90, 90)).save(png, "PNG")
    lines = []
    for index in range(frames):
        s3.put_object(Bucket=settings.artifacts_bucket, Key=f"frames/{index}.png", Body=png.getvalue())
        box = {"class_id": 0, "left": 4, "top": 4, "width": 10, "height": 20}
        lines.append(
            {
                "source-ref": f"s3://{settings.artifacts_bucket}/frames/{index}.png",
                PRELABEL_ATTRIBUTE: {"annotations": [box]},
            }
        )
    manifest_key = "auto_labeling/run-1/manifest/prelabels.manifest"
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=settings.artifacts_bucket, Key=manifest_key, Body=body.encode())
    plan = {"owned": False, "region": "us-east-1", "model_id": "m", "endpoint_name": "team-endpoint"}
    plan.update(frames=frames, threshold=0.5)
    collected = {"answered": frames, "failed": 0, "endpoint_seconds": 0.0}
    manifest = {
        "manifest_uri": f"s3://{settings.artifacts_bucket}/{manifest_key}",
        "models": ["m"],
        "lines": frames,
        "boxes": frames,
    }
    return plan, collected, manifest


def test_the_report_reads_the_settings_once_and_its_sample_frames_at_once(aws, reads, in_flight):
    """publish_report is on the critical path (issue 17.1): one settings read (the S3 client on its
    connection), and the sample grid's frames read at once."""
    from orchard.auto_labeling.report import publish_report
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    plan, collected, manifest = report_inputs()
    reads.settings = 0  # the test's own reads above
    in_flight.peak.clear()

    published = publish_report(plan, collected, manifest, None, "auto_labeling", "manual__1")

    assert published["report_uri"].startswith(f"s3://{settings.reports_bucket or settings.artifacts_bucket}/")
    assert reads.settings == 1
    assert in_flight.peak["GetObject"] == 3  # the three sample frames


def test_the_report_task_announces_what_it_published_without_reading_it_back(aws, reads):
    """The report task's announcement (the Asset event, the run note) carries report.json's metrics and
    cost from the report in hand: one settings read and one AWS session in the whole task (before:
    announce read report.json back through an S3Hook: a second settings read, session and GET)."""
    import json

    import boto3

    from orchard.run_results import SUMMARY_KEY
    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    plan, collected, manifest = report_inputs()
    ti, events = TaskInstance(), OutletEvents()
    reads.settings = reads.sessions = 0

    uri = dag.task_dict["publish_report"].python_callable(
        plan, collected, manifest, None, dag=dag, run_id="manual__1", ti=ti, outlet_events=events
    )

    assert (reads.settings, reads.sessions) == (1, 1)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    published = json.loads(
        boto3.client("s3")
        .get_object(Bucket=bucket, Key=key.replace("report.md", "report.json"))["Body"]
        .read()
    )
    summary = ti.pushed[SUMMARY_KEY]
    assert ti.pushed["report_uri"] == summary["report_uri"] == uri
    assert summary["metrics"] == published["metrics"] and summary["metrics"]["frames"] == 3
    assert summary["cost_usd"] == published["cost_usd"]
    [event] = events.values()
    assert event.extra["report_uri"] == uri and event.extra["metrics"] == summary["metrics"]


class TaskInstance:
    """What the report task uses of its `ti`: `xcom_push`, kept."""

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value


class OutletEvents(dict):
    """The task's `outlet_events`: an event per Asset, made when first asked for."""

    def __missing__(self, asset):
        event = type("OutletEvent", (), {"extra": None})()
        self[asset] = event
        return event
