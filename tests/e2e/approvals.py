"""A person answering a human-in-the-loop approval while ``dag.test()`` runs (it waits for an answer recorded
from outside: ``airflow/sdk/definitions/dag.py``, "Waiting for Human-in-the-loop input")."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


def answer_when_asked(dag_id: str, task_id: str, option: str, user: str, timeout_s: float = 600) -> None:
    """A person's answer to the approval ``task_id`` once it awaits input, through the REST API's own handler
    (``PATCH .../taskInstances/{task_id}/-1/hitlDetails``) on the DB ``dag.test()`` runs on: it records the
    answer and resumes the task, as the api-server does (tests/ui/test_browser.py answers a real one)."""
    SimpleAuthManagerUser, UpdateHITLDetailPayload, update_hitl_detail = _rest_api_handler()
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with create_session() as session:
            waiting = (
                session.query(TaskInstance)
                .filter_by(dag_id=dag_id, task_id=task_id, state=TaskInstanceState.AWAITING_INPUT)
                .first()
            )
            if waiting is not None:
                update_hitl_detail(
                    dag_id=dag_id,
                    dag_run_id=waiting.run_id,
                    task_id=task_id,
                    update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option]),
                    user=SimpleAuthManagerUser(username=user, role="admin"),
                    session=session,
                )
                return
        time.sleep(1)


def _rest_api_handler():
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail

    return SimpleAuthManagerUser, UpdateHITLDetailPayload, update_hitl_detail


@contextlib.contextmanager
def a_person_answering(dag_id: str, task_id: str, option: str, user: str) -> Iterator[None]:
    """Answer ``option`` as ``user`` to the approval ``task_id`` once it waits, in a thread, while the block
    runs the DAG. The API modules are imported here first: a thread importing them while dag.test() imports
    in the main thread can deadlock on the import locks (seen: the aerial run never got its answer)."""
    _rest_api_handler()
    from airflow.models.taskinstance import TaskInstance  # noqa: F401 (imported before the thread, as above)

    person = threading.Thread(target=answer_when_asked, args=(dag_id, task_id, option, user), daemon=True)
    person.start()
    yield
    person.join(timeout=5)
