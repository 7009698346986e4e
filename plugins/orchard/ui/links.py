"""The "Run report" extra link on each pipeline's report task.

Airflow 3 computes an operator's extra links in the worker when the task ends and keeps them in XCom
(``_link_<class name>``); the UI shows them on the task instance. The link class must also be registered
in a plugin's ``operator_extra_links`` so the API server can deserialize it ("Define an operator extra
link", https://airflow.apache.org/docs/apache-airflow/3.4.0/howto/define-extra-link.html).

In a DAG file: ``with_report_link(publish_report(...))``: one call around the report task.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

URL_PREFIX = "/orchard-reports"

T = TypeVar("T")


def report_url(dag_id: str, run_id: str, base_url: str = "") -> str:
    """Where the Reports app renders this run's report (``base_url``: the Airflow UI's, may be empty)."""
    return f"{base_url.rstrip('/')}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/"


def _ui_base_url() -> str:
    """The path of ``[api] base_url`` (e.g. ``/airflow`` behind a proxy): the link stays host-relative."""
    from urllib.parse import urlsplit

    try:
        from airflow.configuration import conf

        return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:  # config unreadable: a root-relative link still works from the UI
        return ""


class ReportLink(BaseOperatorLink):
    """Opens the run's rendered report (orchard Reports app) from the report task."""

    name = "Run report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return report_url(ti_key.dag_id, ti_key.run_id, _ui_base_url())


def with_report_link(task_output: T) -> T:
    """Attach the "Run report" link to the task behind ``task_output`` (an XComArg or an operator)."""
    operator = getattr(task_output, "operator", task_output)
    links = [link for link in operator.operator_extra_links or () if not isinstance(link, ReportLink)]
    operator.operator_extra_links = (*links, ReportLink())
    return task_output
