"""fruit_features' `create_cluster` ends in the triggerer once its cluster is ready (orchard.triggers.
emr_cluster, issue 17.1): the task of one scaling point (a map index of the mapped `scaling_run` group)
gives its downstream tasks exactly the value the provider's resume would return; any other end resumes it.

The Airflow path is test_task_end's (the metadata DB, the triggerer's and a worker's request handlers), on
a probe DAG whose two tasks sit in a mapped task group as fruit's do."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest
from airflow.triggers.base import TriggerEvent

from orchard.fruit_features.clusters import OrchardEmrCreateJobFlowOperator
from orchard.triggers.emr_cluster import EmrClusterReadyTrigger
from tests.airflow_runs import new_run
from tests.e2e.conftest import airflow_db  # noqa: F401 (fixture)
from tests.plugins.fruit_features.test_clusters import OVERRIDES, emr  # noqa: F401 (fixture)
from tests.plugins.triggers.test_task_end import read_as_downstream, state_of, submit

DAG_ID, GROUP = "orchard_emr_cluster_probe", "scaling_run"
CLUSTER = "j-2AXXXXXXGAPLF"
MAPPED_PROBE_DAG = f"""
import pendulum
from airflow.sdk import DAG, task_group
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task_group
    def {GROUP}(point):
        EmptyOperator(task_id="create_cluster") >> EmptyOperator(task_id="extract")

    {GROUP}.expand(point=[1, 2])
"""


@pytest.fixture
def deferred_point(airflow_db, tmp_path):  # noqa: F811 (the fixture imported above)
    """(trigger row id, the TaskInstance): scaling point 1's create_cluster deferred, point 0's not."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        run = new_run(tmp_path, DAG_ID, MAPPED_PROBE_DAG, session)
        trigger = Trigger(classpath="orchard.triggers.emr_cluster.EmrClusterReadyTrigger", kwargs={})
        session.add(trigger)
        session.flush()
        ti = run.get_task_instance(f"{GROUP}.create_cluster", map_index=1, session=session)
        ti.state, ti.trigger_id, ti.next_method = TaskInstanceState.DEFERRED, trigger.id, "execute_complete"
        session.flush()
        session.expunge(ti)
        return trigger.id, ti


def trigger(ti: Any = None) -> EmrClusterReadyTrigger:
    made = EmrClusterReadyTrigger(
        job_flow_id=CLUSTER,
        waiter_delay=1,
        waiter_max_attempts=3,
        region_name="eu-west-1",
        end_in_trigger=True,
    )
    made.task_instance = ti
    return made


def what_the_resume_returns(event: dict[str, Any]) -> Any:
    return create_operator().execute_complete({"ti": mock.MagicMock()}, event)


def create_operator() -> OrchardEmrCreateJobFlowOperator:
    return OrchardEmrCreateJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides=OVERRIDES,
        emr_conn_id=None,
        region_name="us-east-1",
        wait_for_completion=True,
        deferrable=True,
        waiter_delay="5",
        waiter_max_attempts="7",
    )


READY = TriggerEvent({"status": "success", "job_flow_id": CLUSTER})


def test_a_ready_cluster_ends_its_scaling_points_task_with_the_value_its_resume_would_return(
    deferred_point,
    comms,
):
    trigger_id, ti = deferred_point

    event = asyncio.run(trigger(ti)._ending(READY))
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent"
    assert state_of(ti) == "success"
    assert ti.map_index == 1
    # extract of the same scaling point reads it (its map index's), as the resume would have pushed it
    assert read_as_downstream(ti, "return_value") == what_the_resume_returns(READY.payload) == CLUSTER
    other_point = mock.Mock(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=0)
    assert read_as_downstream(other_point, "return_value") is None


@pytest.mark.parametrize(
    "event",
    [
        TriggerEvent({"status": "failure", "message": "JobFlow creation failed", "job_flow_id": CLUSTER}),
        TriggerEvent({"status": "error", "message": "Waiter timed out", "job_flow_id": CLUSTER}),
    ],
)
def test_any_other_end_resumes_the_task_whose_operator_words_it(
    deferred_point,
    comms,
    event,
):
    from airflow.sdk.exceptions import AirflowException

    trigger_id, ti = deferred_point

    ended = asyncio.run(trigger(ti)._ending(event))

    assert ended is event and comms.sent == []  # nothing pushed
    assert state_of(ti) == "deferred"
    with pytest.raises(AirflowException, match="Error creating jobFlow"):
        what_the_resume_returns(event.payload)


def test_the_operator_lets_its_trigger_end_the_task_and_the_switch_survives_serialize(emr):  # noqa: F811
    """Before this, create_cluster deferred on the provider's EmrCreateJobFlowTrigger and always resumed."""
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferral:
        create_operator().execute({"ti": mock.MagicMock()})

    path, kwargs = deferral.value.trigger.serialize()
    assert path == "orchard.triggers.emr_cluster.EmrClusterReadyTrigger"
    assert kwargs["end_in_trigger"] is True and kwargs["waiter_name"] == "job_flow_waiting"
    rebuilt = EmrClusterReadyTrigger(**kwargs)  # as the triggerer rebuilds it
    assert rebuilt.serialize() == (path, kwargs)
    assert (rebuilt.hook().region_name, rebuilt.waiter_delay, rebuilt.attempts) == ("us-east-1", 5, 7)
    assert rebuilt.serialized_fields["job_flow_id"].startswith("j-")


def test_the_wait_itself_is_the_providers_and_its_success_ends_the_task(deferred_point, comms):
    """Through `run()`: the provider's waiter says success, the supervisor's API is warmed first."""
    from orchard.compat import EmrCreateJobFlowTrigger

    async def ready(self):
        yield TriggerEvent({"status": "success", "job_flow_id": self.serialized_fields["job_flow_id"]})

    trigger_id, ti = deferred_point
    with mock.patch.object(EmrCreateJobFlowTrigger, "run", ready):
        from tests.plugins.triggers.test_task_end import first_event

        event = first_event(trigger(ti))
    submit(trigger_id, event)

    assert [type(msg).__name__ for msg in comms.sent] == ["GetDagRunState", "SetXCom"]
    assert read_as_downstream(ti, "return_value") == CLUSTER
