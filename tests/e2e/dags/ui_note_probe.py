"""A tiny DAG for tests/ui: its report task announces a result that needs attention (orchard.run_results),
so the test can check the run stays green and the plugin's listener writes the run's note."""

from __future__ import annotations

from airflow.sdk import dag, task

from orchard.ui.links import with_report_link


@dag(schedule=None, catchup=False, tags=["test"], default_args={"owner": "ml-platform", "retries": 0})
def ui_note_probe():
    @task
    def report(ti=None) -> str:
        from orchard.run_results import announce

        uri = "s3://orchard-artifacts/reports/ui_note_probe/run/report.md"
        announce(ti, uri, {"frames": 10, "failed": 2}, attention=["2 frame(s) failed"], cost_usd=0.5)
        return uri

    with_report_link(report())


ui_note_probe()
