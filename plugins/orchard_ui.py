"""orchard's Airflow UI plugin: run reports in the UI, the "Run report" link, run notes with the results.

- ``fastapi_apps``: the Reports app at ``/orchard-reports`` (``orchard.ui.app``): the Reports page and each
  run's rendered report.md with its figures, read from S3 through the ``aws_default`` connection, behind
  Airflow's auth;
- ``external_views``: "Reports" in the navigation bar and a "Report" tab on each DAG run (``{DAG_ID}`` and
  ``{RUN_ID}`` are filled in by the UI);
- ``operator_extra_links``: ``ReportLink`` ("Run report"), which the report tasks carry
  (``orchard.ui.links.with_report_link``); registering it lets the API server deserialize it;
- ``listeners``: ``RunSummaryListener`` writes the run's key metrics, report URI and attention items
  into the run's note when it ends (``orchard.run_results``).

Airflow 3.3 plugin interface ("Customize view of Apache from Airflow web UI"):
https://airflow.apache.org/docs/apache-airflow/3.3.0/howto/custom-view-plugin.html
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from orchard.ui.app import URL_PREFIX, app
from orchard.ui.links import ReportLink
from orchard.ui.notes import RunSummaryListener


class OrchardUIPlugin(AirflowPlugin):
    name = "orchard_ui"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "orchard reports"}]
    external_views = [
        {
            "name": "Reports",
            "href": "orchard-reports/",
            "destination": "nav",
            "url_route": "orchard-reports",
            "category": "browse",
        },
        {
            "name": "Report",
            "href": "orchard-reports/runs/{DAG_ID}/{RUN_ID}/",
            "destination": "dag_run",
            "url_route": "orchard-run-report",
        },
    ]
    operator_extra_links = [ReportLink()]
    listeners = [RunSummaryListener()]
