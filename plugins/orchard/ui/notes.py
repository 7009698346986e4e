"""The run note and the report task's note, written in the scheduler from the ``run_summary`` XComs that
``orchard.run_results.announce`` pushed (see that module). Registered as a plugin listener; Airflow calls
``on_dag_run_success`` / ``on_dag_run_failed`` in the scheduler, inside its session, when a run ends
("Listeners", https://airflow.apache.org/docs/apache-airflow/3.3.0/administration-and-deployment/listeners.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.listeners import hookimpl

from orchard.run_results import NOTE_HEADER, SUMMARY_KEY, note_text


class RunSummaryListener:
    """Scheduler-side: copies the run's ``run_summary`` XComs into its note and the report task's note."""

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        self.write_notes(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        self.write_notes(dag_run)

    @staticmethod
    def write_notes(dag_run: Any, session: Any = None) -> str | None:
        from airflow.models.xcom import XComModel
        from sqlalchemy.orm import object_session

        session = session or object_session(dag_run)
        if session is None:
            return None
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key=SUMMARY_KEY)
        rows = list(session.scalars(query))
        if not rows:
            return None
        summaries = []
        for row in sorted(rows, key=lambda r: (r.task_id, r.map_index)):
            value = XComModel.deserialize_value(row)
            if isinstance(value, Mapping):
                summaries.append(value)
                ti_note = note_text([value])
                ti = dag_run.get_task_instance(row.task_id, session=session, map_index=row.map_index)
                if ti is not None and _ours(ti.task_instance_note):
                    ti.note = ti_note
        text = note_text(summaries)
        if _ours(dag_run.dag_run_note):
            dag_run.note = text
        return text


def _ours(note: Any) -> bool:
    """No note yet, or one this listener wrote (no user): a person's note is never replaced."""
    return note is None or (note.user_id is None and str(note.content or "").find(NOTE_HEADER) >= 0)
