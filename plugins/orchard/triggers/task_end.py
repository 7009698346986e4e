"""End a deferred task in the triggerer, with the XComs its resume would have pushed (issue 17.1).

After a job ends, resuming its deferred task costs a fresh worker process that re-parses the DAG file only
to return what the trigger already knows (2-4 s on a quiet machine, 7-14 s median under load, on each
pipeline's critical path). Airflow 3 lets a trigger end the task instead: it yields a `TaskSuccessEvent`
("Exiting deferred task from Triggers",
https://airflow.apache.org/docs/apache-airflow/3.3.0/authoring-and-scheduling/deferring.html).

The XComs do NOT travel in the event: Airflow 3.3.2 stores a `TaskSuccessEvent`'s `xcoms` JSON-encoded
twice (airflow/models/trigger.py `handle_event_submit` -> ORM `TaskInstance.xcom_push` ->
`XComModel.set(serialize=True)`, a `json.dumps` into a JSON column; the execution API returns the stored
value raw and the Task SDK leaves a string as it is), so a downstream task would read `'"job-id"'`.
They go through the Task SDK's `XCom.aset`, the call a worker makes for a task's return value
(`task_runner._xcom_push`): the triggerer's supervisor forwards its `SetXCom` to the execution API route
workers use (`handle_set_xcom`), which stores the value as sent. The event itself then carries none.
Pushed before the event, they are in place before the task is marked success, so before any reader runs.

Without its task instance (`dag.test()` runs a trigger inline without one, and resumes the task after any
event) or when a push fails, `end_with_xcoms` answers None and the trigger resumes the task as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent


async def end_with_xcoms(trigger: BaseTrigger, xcoms: Mapping[str, Any]) -> TaskSuccessEvent | None:
    """Push `xcoms` as the trigger's task instance's and return the event that ends the task with success;
    None when the trigger cannot (the task then resumes, and its operator pushes them)."""
    ti = trigger.task_instance
    if ti is None:
        return None
    from airflow.sdk.execution_time.xcom import XCom  # the configured backend, as a worker's task uses

    try:
        for key, value in xcoms.items():
            await XCom.aset(
                key=key,
                value=value,
                dag_id=ti.dag_id,
                task_id=ti.task_id,
                run_id=ti.run_id,
                map_index=ti.map_index,
            )
    except Exception as error:  # the resume pushes them, with the task's retries
        trigger.log.warning("could not push the task's XComs (%s): the task resumes to push them", error)
        return None
    trigger.log.info("the task ends here, its XComs %s pushed", sorted(xcoms))
    return TaskSuccessEvent()


async def warm_the_supervisors_api(trigger: BaseTrigger) -> None:
    """Make the triggerer's supervisor build its in-process execution API now, while the job runs.

    Triggers whose connection comes from the environment never ask the supervisor anything, so the first
    XCom push of a triggerer process is also the first import of the API app there (measured on the stack:
    33 s at load 25 on 2 cores, with the supervisor's loop blocked meanwhile and its "deadlocked" watchdog
    firing), on the critical path of the first job task that ends. One cheap read (the run's state) at the
    start of the wait moves that cost off it; failing it changes nothing."""
    ti = trigger.task_instance
    if ti is None:
        return
    from airflow.sdk.execution_time.comms import GetDagRunState
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    try:
        await SUPERVISOR_COMMS.asend(GetDagRunState(dag_id=ti.dag_id, run_id=ti.run_id))
    except Exception as error:  # a courtesy: the push at the end builds it anyway
        trigger.log.info("the supervisor's API did not answer ahead of the task's end (%s)", error)


class EndsTaskOnSuccess:
    """A trigger (this mixin first in its bases) whose successful wait may end its task.

    With `end_in_trigger` set, `run` warms the supervisor's API, waits as `waiting()` does (default: the
    trigger's own `run`), and on a "success" event calls `success_xcoms(event)` in a thread: the calls its
    operator's resume would make, returning the XComs it would push. Those pushed, the task ends here. Any
    other event, an error there (the resume words it, with the task's retries) or a push that fails
    resumes the task. Without `end_in_trigger` it is the trigger it wraps."""

    end_in_trigger: bool = False

    def waiting(self) -> AsyncIterator[TriggerEvent]:
        return super().run()  # type: ignore[misc]

    def success_xcoms(self, event: TriggerEvent) -> Mapping[str, Any]:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        waiting = self.waiting()
        try:
            if self.end_in_trigger:
                await warm_the_supervisors_api(self)  # type: ignore[arg-type]
            async for event in waiting:
                yield await self._ending(event) if self.end_in_trigger else event
        finally:  # closed with this one: left to the loop's shutdown, its AWS client took ~20 s to close
            await waiting.aclose()

    async def _ending(self, event: TriggerEvent) -> TriggerEvent | TaskSuccessEvent:
        if event.payload.get("status") != "success":
            return event
        try:
            xcoms = await asyncio.to_thread(self.success_xcoms, event)
        except Exception as error:
            self.log.warning("%s: %s; the task resumes", type(self).__name__, error)  # type: ignore[attr-defined]
            return event
        return await end_with_xcoms(self, xcoms) or event  # type: ignore[arg-type]


class EndsProviderTaskOnSuccess(EndsTaskOnSuccess):
    """`EndsTaskOnSuccess` for a subclass of one of the provider's triggers (this class first in its bases):
    takes `end_in_trigger` beside the provider trigger's own arguments and serializes it with them."""

    def __init__(self, *args: Any, end_in_trigger: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.end_in_trigger = bool(end_in_trigger)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()  # type: ignore[misc]
        return path, {**kwargs, "end_in_trigger": self.end_in_trigger}


def may_end_in_trigger(operator: Any) -> bool:
    """Whether `operator`'s trigger may end its task: its resume would do nothing but push what the trigger
    pushes. Not when nothing is pushed (links are XComs too), nor with output files read into the value
    (SageMaker's `output_files_to_xcom`), nor when a mapped task expands over the value. The operators' flag
    is not named `end_from_trigger`: the DAG bag refuses that attribute while a plugin registers listeners
    (orchard_ui's run-level one)."""
    return (
        operator.do_xcom_push
        and not getattr(operator, "output_files_to_xcom", None)
        and not expanded_over(operator)
    )


def expanded_over(task: Any) -> bool:
    """Whether a mapped task expands over `task`'s return value: a worker then records the map's length
    with it (`task_runner._push_xcom_if_needed`), which a push from the trigger would not."""
    return task.has_dag() and next(task.iter_mapped_dependants(), None) is not None
