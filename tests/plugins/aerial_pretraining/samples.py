"""What aerial_pretraining's plugin tests share: the DAG file, a run id, the deployed job code's URIs."""

from __future__ import annotations

from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "aerial_pretraining.py"
CODE = {
    "sourcedir_uri": "s3://orchard-artifacts/x/code/sourcedir.tar.gz",
    "files_uri": "s3://orchard-artifacts/x/code/files/",
}
RUN_ID = "manual__2026-11-21T10:00:00+00:00"
