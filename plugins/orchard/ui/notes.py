"""The run note and the report task's note, written in the scheduler from the ``run_summary`` XComs that
``orchard.run_results.announce`` pushed (see that module). Registered as a plugin listener; Airflow calls
``on_dag_run_success`` / ``on_dag_run_failed`` in the scheduler, inside its session, when a run ends
("Listener Plugin of Airflow":
https://airflow.apache.org/docs/apache-airflow/3.3.0/howto/listener-plugin.html).
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
        if session is None:  # a run detached from its session (`dag.test()`): load it in one of ours
            from airflow.models.dagrun import DagRun
            from sqlalchemy import select

            with _own_session() as own:
                query = select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id)
                attached = own.scalar(query)
                text = RunSummaryListener.write_notes(attached, own) if attached is not None else None
                own.commit()
                return text
        # The summaries are read in a session of their own: what the tasks committed, whatever snapshot the
        # caller's transaction (which marked the run ended) still reads from.
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key=SUMMARY_KEY)
        with _own_session() as reader:
            rows = [(r.task_id, r.map_index, XComModel.deserialize_value(r)) for r in reader.scalars(query)]
        summaries = []
        for task_id, map_index, value in sorted(rows, key=lambda row: (row[0], row[1])):
            if isinstance(value, Mapping):
                summaries.append(value)
                ti = dag_run.get_task_instance(task_id, session=session, map_index=map_index)
                if ti is not None and _ours(ti.task_instance_note):
                    ti.note = note_text([value])
        if not summaries:
            return None
        text = note_text(summaries)
        if _ours(dag_run.dag_run_note):
            dag_run.note = text
        return text


def _own_session() -> Any:
    """A session on its own connection: not Airflow's thread-scoped one, which the caller may be using
    (closing that would detach the scheduler's objects)."""
    from airflow import settings
    from sqlalchemy.orm import Session

    return Session(bind=settings.engine, expire_on_commit=False)


def _ours(note: Any) -> bool:
    """No note yet, or one this listener wrote (no user): a person's note is never replaced."""
    return note is None or (note.user_id is None and str(note.content or "").find(NOTE_HEADER) >= 0)
