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
