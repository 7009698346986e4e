"""edge_deployment names its deployment's buckets from settings, never hard-coded ones (issue 12)."""

from __future__ import annotations

import importlib
from pathlib import Path

from tests.dag_files import load_dag

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "edge_deployment.py"


def test_param_defaults_and_the_asset_name_the_settings_buckets(monkeypatch):
    monkeypatch.setenv("ORCHARD_DATA_BUCKET", "acme-edge-data")
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", "acme-edge-artifacts")
    import orchard.operators.edge_package as edge_package

    try:
        importlib.reload(edge_package)  # the Asset is built at import, from settings
        dag = load_dag(DAG_FILE)
        defaults = {name: param.value for name, param in dag.params.items()}
        assert defaults["model_uri"] == "s3://acme-edge-data/edge_deployment/demo/model/model.tar.gz"
        assert defaults["calibration_uri"] == "s3://acme-edge-data/edge_deployment/demo/images/calibration/"
        uris = [str(value) for value in defaults.values()]
        assert not [u for u in uris if "orchard-data" in u or "orchard-artifacts" in u]
        [asset] = dag.get_task("report").outlets
        assert asset.uri.rstrip("/") == "s3://acme-edge-artifacts/edge_deployment/packages"
    finally:
        monkeypatch.undo()
        importlib.reload(edge_package)
