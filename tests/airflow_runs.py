"""A DAG run in the test session's metadata DB, for tests that drive Airflow's own code (the triggerer's event
handling, the scheduler's executor-event handling) against real rows: `tests.e2e.conftest.airflow_db`
creates the DB."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any


def new_run(folder: Path, dag_id: str, dag_source: str, session: Any) -> Any:
    """A fresh manual DagRun of the DAG `dag_source` defines (written to `folder` and synced to the DB as the
    dag-processor would), in `session`."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import get_or_create_dagrun
    from airflow.utils.types import DagRunTriggeredByType

    (folder / f"{dag_id}.py").write_text(textwrap.dedent(dag_source))
    DagBundlesManager().sync_bundles_to_db(session=session)
    session.commit()
    bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    now = dt.datetime.now(dt.UTC)
    return get_or_create_dagrun(
        dag=DBDagBag().get_latest_version_of_dag(dag_id, session=session),
        run_id=f"manual__{now.isoformat()}",
        logical_date=None,
        data_interval=None,
        run_after=now,
        conf=None,
        triggered_by=DagRunTriggeredByType.TEST,
        triggering_user_name="test",
        start_date=now,
        session=session,
    )
