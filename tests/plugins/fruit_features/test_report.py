"""orchard.fruit_features.report: what the features Asset event says about the run (the report itself is
built in tests/e2e/test_fruit_features.py, from a real run's output)."""

from __future__ import annotations

from orchard.fruit_features.report import features_extra


def test_the_features_asset_extra_names_the_features_and_the_report():
    checked = {
        "output": "s3://data/features/run/core_nodes=2/",
        "rows": 14,
        "model": "efficientnet_lite0",
        "pca_k": 3,
    }

    extra = features_extra(checked, "s3://reports/fruit_features/run/report.md")

    assert extra == {
        "features": "s3://data/features/run/core_nodes=2/features/",
        "rows": 14,
        "model": "efficientnet_lite0",
        "pca_k": 3,
        "report": "s3://reports/fruit_features/run/report.md",
    }


def test_the_report_reads_the_settings_once_and_opens_one_session(aws, monkeypatch):
    """EMR, S3 and SageMaker on one session, the settings read once (was: three sessions, four reads)."""
    from orchard.fruit_features import report
    from tests.plugins.reads import count_reads

    counted = count_reads(monkeypatch)
    services = []

    class Built:
        metrics, cost_usd = {"rows": 1}, 0.5

        def publish(self, s3, bucket, prefix):
            return f"s3://{bucket}/{prefix}report.html"

    def build(**kwargs):
        services.extend(kwargs[name].meta.service_model.service_name for name in ("emr", "s3", "sagemaker"))
        return Built()

    monkeypatch.setattr(report, "build_report", build)
    planned = {"region": "us-east-1"}
    checked = {"corrupt_count": 0}

    record = {"core_nodes": 2}
    summary = report.publish_run_report(planned, checked, record, {"exists": True}, "fruit_features", "r1")

    assert summary["report_uri"].endswith("report.html") and summary["attention"] == []
    assert services == ["emr", "s3", "sagemaker"]
    assert (counted.settings, counted.sessions) == (1, 1)
