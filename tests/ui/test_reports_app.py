"""The Reports app (orchard.ui): which keys a request may read, report.md as safe HTML, the routes on S3.

S3 is moto in-process; a real Report is published with Report.publish, so the app is tested on what the
pipelines write. Airflow's auth is exercised as far as it goes without an API server (no credentials →
401); the browser test (test_browser.py) logs in for real.
"""

from __future__ import annotations

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from orchard.reports import Report, new_figure
from orchard.ui import app as reports_app
from orchard.ui import render

BUCKET = "orchard-artifacts"
DAG_ID = "edge_deployment"
RUN_ID = "manual__2026-12-06T10:00:00.123456+00:00"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ORCHARD_USE_AIRFLOW_VARIABLES", "false")
    monkeypatch.setenv("ORCHARD_REPORTS_BUCKET", BUCKET)
    monkeypatch.setenv("ORCHARD_REPORTS_PREFIX", "reports/")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        monkeypatch.setattr(reports_app, "_s3", lambda settings: client)
        yield client


def publish(s3, dag_id=DAG_ID, run_id=RUN_ID, metrics=None) -> str:
    report = Report("Edge deployment", dag_id, run_id)
    report.add_text("Camera-2 input **PSI 17.4** <script>alert(1)</script> [bad](javascript:alert(1))")
    report.add_metrics(metrics or {"devices": 3, "max input PSI": 17.4})
    fig = new_figure(figsize=(2, 2))
    fig.add_subplot().plot([1, 2, 3])
    report.add_figure("drift", fig, caption="input drift")
    report.add_cost(
        [
            {
                "job": "neo",
                "service": "sagemaker",
                "instance_type": "ml.c5.xlarge",
                "billable_seconds": 120,
                "region": "us-east-1",
            }
        ]
    )
    return report.publish(s3, BUCKET, "reports/")


@pytest.fixture
def client(s3):
    async def user():
        return "tester"

    async def allowed():
        return None

    reports_app.app.dependency_overrides = {
        reports_app.current_user: user,
        reports_app.authorize_dag_run: allowed,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reports_app, "_can_read_dag_run", lambda dag_id, user: dag_id != "secret_dag")
        yield TestClient(reports_app.app, root_path="/orchard-reports")
    reports_app.app.dependency_overrides = {}


def test_run_folder_is_where_report_publish_writes():
    report = Report("t", DAG_ID, RUN_ID)
    assert render.run_folder("reports/", DAG_ID, RUN_ID) == report.key_prefix("reports/")
    assert render.run_folder("", DAG_ID, RUN_ID) == report.key_prefix("")


@pytest.mark.parametrize(
    "dag_id, run_id",
    [
        ("../etc", RUN_ID),
        ("a/b", RUN_ID),
        ("", RUN_ID),
        (DAG_ID, "manual__x/../../y"),
        (DAG_ID, "a b"),
        (DAG_ID, ""),
        (DAG_ID, "x" * 251),
    ],
)
def test_bad_ids_are_refused_with_the_rule(dag_id, run_id):
    with pytest.raises(render.NotAllowed, match="invalid (DAG|run) id"):
        render.run_folder("reports/", dag_id, run_id)


@pytest.mark.parametrize(
    "path",
    [
        "../report.json",
        "figures/../../x.png",
        "/figures/a.png",
        "figures/a.svg",
        "report.json",
        "report.md",
        "a/b/figures/x.png",
        "figures/.png",
        "figures/..png",
        "Figures/a.png",
        "figures/a.png?x=1",
    ],
)
def test_only_figure_paths_map_to_keys(path):
    with pytest.raises(render.NotAllowed, match="not a report figure"):
        render.figure_key("reports/", DAG_ID, RUN_ID, path)


def test_figure_key_stays_in_the_run_folder():
    folder = render.run_folder("reports/", DAG_ID, RUN_ID)
    assert render.figure_key("reports/", DAG_ID, RUN_ID, "figures/drift.png") == f"{folder}figures/drift.png"
    nested = render.figure_key("reports/", DAG_ID, RUN_ID, "proj-1/figures/a.png")
    assert nested == f"{folder}proj-1/figures/a.png"


def test_markdown_is_rendered_without_raw_html_or_script_links():
    html = render.markdown_to_html(
        "# T\n\n| a | b |\n|---|---|\n| x<br>y | 2 |\n\n<script>alert(1)</script>\n\n"
        "[js](javascript:alert(1)) [aws](https://console.aws.amazon.com/x)\n\n"
        "![fig](figures/a.png) ![ext](https://evil.example/x.png)",
        figure_base="proj",
    )
    assert "<table>" in html and "<td>x<br>y</td>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert 'href="https://console.aws.amazon.com/x" target="_blank" rel="noopener noreferrer"' in html
    assert 'src="proj/figures/a.png"' in html
    assert "evil.example" not in html


def test_report_keys_finds_run_and_project_reports():
    folder = "reports/pose/run-abc/"
    keys = [
        f"{folder}report.md",
        f"{folder}p1/report.md",
        f"{folder}p1/x/report.md",
        f"{folder}report.json",
        "reports/other/report.md",
    ]
    assert render.report_keys(folder, keys) == [("", f"{folder}report.md"), ("p1", f"{folder}p1/report.md")]


def test_run_report_page_renders_the_published_report(client, s3):
    publish(s3)
    page = client.get(f"/runs/{DAG_ID}/{RUN_ID}/")
    assert page.status_code == 200, page.text
    assert "<h1>Edge deployment</h1>" in page.text
    assert "<td>max input PSI</td>" in page.text and "<td>17.4</td>" in page.text
    assert 'src="figures/drift.png"' in page.text
    assert "<script>alert" not in page.text and 'href="javascript' not in page.text
    assert "/dags/edge_deployment/runs/manual__2026-12-06T10%3A00%3A00.123456%2B00%3A00" in page.text
    figure = client.get(f"/runs/{DAG_ID}/{RUN_ID}/figures/drift.png")
    assert figure.status_code == 200 and figure.content.startswith(render.PNG_MAGIC)
    assert figure.headers["content-type"] == "image/png"
    assert figure.headers["x-content-type-options"] == "nosniff"


def test_run_report_routes_refuse_other_objects(client, s3):
    publish(s3)
    s3.put_object(Bucket=BUCKET, Key="secrets/figures/x.png", Body=render.PNG_MAGIC + b"secret")
    for path in ("report.json", "../../../secrets/figures/x.png", "figures/..%2F..%2Fx.png", "report.md"):
        response = client.get(f"/runs/{DAG_ID}/{RUN_ID}/{path}")
        assert response.status_code in (400, 404), (path, response.status_code)
        assert b"secret" not in response.content
    assert client.get(f"/runs/{DAG_ID}/{RUN_ID}/figures/none.png").status_code == 404
    missing = client.get(f"/runs/{DAG_ID}/manual__2026-01-01T00:00:00+00:00/")
    assert missing.status_code == 404 and "No report for run" in missing.text
    bad = client.get(f"/runs/{DAG_ID}/a%20b/")
    assert bad.status_code == 400 and "invalid run id" in bad.text


def test_reports_page_lists_runs_with_metrics_and_cost_for_readable_dags(client, s3):
    publish(s3)
    publish(s3, run_id="manual__2026-12-06T11:00:00+00:00", metrics={"devices": 2})
    publish(s3, dag_id="secret_dag", metrics={"hidden metric": 1})
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert "<h1>Reports</h1>" in page.text and "<code>edge_deployment</code>" in page.text
    assert page.text.index("manual__2026-12-06T11:00:00+00:00") < page.text.index(RUN_ID)  # newest first
    assert "max input PSI: <b>17.4</b>" in page.text
    assert "$0." in page.text  # the run's estimated cost
    assert 'href="runs/edge_deployment/manual__2026-12-06T10%3A00%3A00.123456%2B00%3A00/"' in page.text
    assert "secret_dag" not in page.text and "hidden metric" not in page.text


def test_without_credentials_airflow_auth_answers_401(s3):
    reports_app.app.dependency_overrides = {}
    bare = TestClient(reports_app.app)
    assert bare.get("/").status_code == 401
    assert bare.get(f"/runs/{DAG_ID}/{RUN_ID}/").status_code == 401
    assert bare.get(f"/runs/{DAG_ID}/{RUN_ID}/figures/drift.png").status_code == 401


def test_an_s3_refusal_is_explained_not_a_500(client, s3):
    from botocore.exceptions import ClientError

    def deny(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no s3:ListBucket"}}, "ListObjectsV2")

    s3.list_objects_v2 = deny
    for path in ("/", f"/runs/{DAG_ID}/{RUN_ID}/"):
        page = client.get(path)
        assert page.status_code == 502
        assert "AccessDenied: no s3:ListBucket" in page.text and "&#x27;aws_default&#x27;" in page.text
