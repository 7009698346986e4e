"""Results where people look: the run summary on the Asset event, in XCom, in the run's note (through the
plugin's listener, in a real `dag.test()` run), and the "Run report" link on each DAG's report task."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from orchard import run_results
from orchard.ui.links import ReportLink, report_url, with_report_link

REPO_ROOT = Path(__file__).resolve().parents[2]
# The task that publishes each pipeline's report (XCom report_uri).
REPORT_TASKS = {
    "aerial_pretraining": "publish_report",
    "auto_labeling": "publish_report",
    "edge_deployment": "report",
    "fruit_features": "publish_report",
    "pose_training": "project.check_export",
}


class FakeTI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


class FakeEvent:
    extra = {"model_uri": "s3://b/m/"}


def test_announce_puts_metrics_report_and_attention_on_the_asset_event_and_xcom(caplog):
    ti, event = FakeTI(), FakeEvent()
    with caplog.at_level(logging.WARNING, logger="orchard.run_results"):
        summary = run_results.announce(
            ti,
            "s3://r/reports/edge/run-1/report.md",
            {"devices": 3, "psi": 17.4},
            attention=["camera-2: drift over threshold (input PSI 17.4)"],
            cost_usd=0.12,
            outlet_events={"asset": event},
            asset="asset",
        )
    assert ti.pushed["run_summary"] == summary
    assert summary == {
        "report_uri": "s3://r/reports/edge/run-1/report.md",
        "metrics": {"devices": 3, "psi": 17.4},
        "cost_usd": 0.12,
        "attention": ["camera-2: drift over threshold (input PSI 17.4)"],
    }
    assert event.extra == {"model_uri": "s3://b/m/", **summary}  # what the task set before is kept
    assert "Needs attention: camera-2: drift over threshold" in caplog.text


def test_announce_refuses_what_is_not_a_report_uri():
    with pytest.raises(ValueError, match="s3:// URI Report.publish returned"):
        run_results.announce(FakeTI(), "reports/x.md", {}, cost_usd=0)


def test_drift_attention_names_each_drifting_device():
    monitor = {
        "devices": {
            "camera-1": {
                "input_psi": 0.02,
                "input_drift": False,
                "prediction_psi": 0.01,
                "prediction_drift": False,
            },
            "camera-2": {
                "input_psi": 17.4,
                "input_drift": True,
                "prediction_psi": 0.3,
                "prediction_drift": True,
            },
        }
    }
    assert run_results.drift_attention(monitor) == [
        "camera-2: drift over threshold (input PSI 17.4, prediction PSI 0.3)"
    ]
    assert run_results.drift_attention(None) == []
    assert run_results.drift_attention({"devices": {}, "note": "no reference"}) == []


def test_note_text_leads_with_the_warning_and_fits_the_api_limit():
    ok = {"report_uri": "s3://r/a/report.md", "metrics": {"mAP": 0.71234}, "cost_usd": 1.5, "attention": []}
    bad = {**ok, "attention": ["not promoted: mAP 0.71 < 0.75"]}
    assert run_results.note_text([ok]).startswith("orchard run summary (nothing needs attention):")
    text = run_results.note_text([bad, ok])
    assert text.splitlines()[0] == "⚠ Needs attention: not promoted: mAP 0.71 < 0.75"
    assert "mAP = 0.7123" in text and "estimated cost: $1.50" in text
    huge = {**ok, "metrics": {f"m{i}": "x" * 50 for i in range(40)}}
    assert len(run_results.note_text([huge] * 5)) <= run_results.NOTE_MAX_CHARS


def test_report_link_points_at_the_reports_app():
    class Key:
        dag_id, run_id, map_index = "fruit_features", "manual__2026-12-06T10:00:00+00:00", -1

    assert ReportLink().get_link(None, ti_key=Key()) == (
        "/orchard-reports/runs/fruit_features/manual__2026-12-06T10%3A00%3A00%2B00%3A00/"
    )
    assert report_url("d", "r", "/airflow/") == "/airflow/orchard-reports/runs/d/r/"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(REPO_ROOT / "dags"), bundle_path=REPO_ROOT / "dags")
    assert not bag.import_errors, bag.import_errors
    return bag


@pytest.mark.parametrize("dag_id, task_id", sorted(REPORT_TASKS.items()))
def test_each_report_task_carries_the_run_report_link_through_serialization(dagbag, dag_id, task_id):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags[dag_id]
    serialized = DagSerialization.to_dict(dag)
    tasks = {t["__var"]["task_id"]: t["__var"] for t in serialized["dag"]["tasks"]}
    assert tasks[task_id].get("_operator_extra_links") == {"Run report": "_link_ReportLink"}
    others = [
        tid
        for tid, t in tasks.items()
        if tid != task_id and "Run report" in t.get("_operator_extra_links", {})
    ]
    assert others == []  # only the report task
    loaded = DagSerialization.from_dict(serialized)
    assert "Run report" in loaded.get_task(task_id).extra_links  # what the API server lists for the UI


def test_with_report_link_keeps_other_links_and_does_not_repeat_itself():
    from airflow.sdk import DAG, BaseOperatorLink
    from airflow.sdk.bases.operator import BaseOperator

    class Other(BaseOperatorLink):
        name = "Other"

        def get_link(self, operator, *, ti_key):
            return "https://example.com"

    with DAG("links_probe", schedule=None):
        op = BaseOperator(task_id="t")
    op.operator_extra_links = (Other(),)
    with_report_link(with_report_link(op))
    assert [link.name for link in op.operator_extra_links] == ["Other", "Run report"]


@pytest.fixture(scope="module")
def airflow_db():
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def test_the_listener_writes_the_run_note_from_the_summary_without_failing_the_run(airflow_db):
    """A real run: the report task announces a result that needs attention; the run stays successful
    and its note (written by the plugin's listener when the run ends) leads with the warning."""
    import sqlalchemy
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    from tests.dag_files import load_dag

    dag = load_dag(REPO_ROOT / "tests" / "e2e" / "dags" / "ui_note_probe.py")
    run = dag.test()
    assert run.state == DagRunState.SUCCESS
    with create_session() as session:
        stored = session.query(DagRun).filter_by(dag_id="ui_note_probe", run_id=run.run_id).one()
        ti = session.query(TaskInstance).filter_by(dag_id="ui_note_probe", run_id=run.run_id).one()
        assert stored.note.startswith("⚠ Needs attention: 2 frame(s) failed")
        assert "frames = 10, failed = 2" in stored.note and "$0.50" in stored.note
        assert ti.note == stored.note
        link = session.execute(
            sqlalchemy.text("select value from xcom where dag_id='ui_note_probe' and key='_link_ReportLink'")
        ).scalar()
        assert "/orchard-reports/runs/ui_note_probe/" in str(link)
