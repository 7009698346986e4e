"""Who sent the SIGTERM behind an operator's ``on_kill``: a person (stop the paid job) or a worker (keep it).

In Airflow 3 the task runner calls ``on_kill`` on every SIGTERM (``task_runner._on_term``). Two senders:
the supervisor, after the API server answered its heartbeat 404/409 because a person marked the task
failed / success, cleared it or stopped the run — the task instance is then no longer ``running`` in the
metadata database; or a worker's graceful shutdown (the supervisor forwards its own SIGTERM) and the
execution timeout — the task instance is still ``running``, and its retry must find the job going. The
task's state, read through the Task SDK (``RuntimeTaskInstance.get_task_states``), tells them apart. When it
cannot be read, the answer is "not a person": the job keeps running, a retry reattaches to it by name and
the run's cleanup teardown stops it if the run fails (docs/architecture.md, "Faults").
"""

from __future__ import annotations

from typing import Any

RUNNING = "running"


def task_state_now(ti: Any) -> str | None:
    """This task instance's state as the API server knows it now; raises when it cannot be asked."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    # on_kill runs in the SIGTERM handler, on the main thread: if that thread was inside a message to the
    # supervisor, its (non-reentrant) lock is held and asking now would deadlock.
    lock = getattr(getattr(task_runner, "SUPERVISOR_COMMS", None), "_thread_lock", None)
    if lock is not None and lock.locked():
        raise RuntimeError("the supervisor channel is busy")
    ask = getattr(ti, "get_task_states", None) or RuntimeTaskInstance.get_task_states
    map_index = getattr(ti, "map_index", -1)
    states = ask(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=map_index)
    return _find_state(states, ti.task_id, map_index)


def ended_by_a_person(ti: Any, log: Any) -> bool:
    """Whether a person ended this try (its state changed from ``running``); False when unknown."""
    if ti is None:
        return False
    try:
        state = task_state_now(ti)
    except Exception as error:  # noqa: BLE001 - no supervisor (tests, dag.test) or the API did not answer
        log.warning("on_kill: cannot read this task's state (%s): the job is left running", error)
        return False
    log.info("on_kill: this task instance is %s in Airflow's database", state)
    return state not in (RUNNING, None)


def _find_state(states: Any, task_id: str, map_index: int | None) -> str | None:
    """The state in get_task_states' answer: {run_id: {task_id or task_id_mapindex: state}}."""
    for per_run in (states or {}).values():
        for key, state in per_run.items():
            if key == task_id or (map_index is not None and key == f"{task_id}_{map_index}"):
                return None if state is None else str(getattr(state, "value", state))
    return None
