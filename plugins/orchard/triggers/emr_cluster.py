"""Wait for a new EMR cluster to be ready, ending the task in the triggerer when it is (issue 17.1).

The wait is the provider's `EmrCreateJobFlowTrigger` (orchard.compat's on a provider whose EMR triggers drop
the region), unchanged: DescribeCluster until the waiter's success (`job_flow_waiting`: WAITING, RUNNING or
TERMINATED) or failure ("DescribeCluster", https://docs.aws.amazon.com/emr/latest/APIReference/
API_DescribeCluster.html, Cluster.Status.State). On success `EmrCreateJobFlowOperator.execute_complete`
only returns the event's `job_flow_id` (its links were persisted before the task deferred, and the worker's
`finalize` stored their URLs then): with `end_in_trigger` this trigger pushes that return value and ends the
task (`orchard.triggers.task_end`), instead of a fresh worker process doing it between the cluster's start
and the step. A failure, a timeout or a push that fails resume the task, whose operator words it.

The provider's trigger does not serialize its `waiter_name` (the triggerer rebuilds it with the default,
`job_flow_waiting`); this one does, so the wait the operator chose is the one the triggerer runs.
"""

from __future__ import annotations

from typing import Any

from airflow.triggers.base import TriggerEvent

from orchard.compat import EmrCreateJobFlowTrigger
from orchard.triggers.emr_step import operator_connection
from orchard.triggers.task_end import EndsProviderTaskOnSuccess


class EmrClusterReadyTrigger(EndsProviderTaskOnSuccess, EmrCreateJobFlowTrigger):
    """EmrCreateJobFlowTrigger whose success may end its task (`end_in_trigger`)."""

    def __init__(self, *args: Any, waiter_name: str = "job_flow_waiting", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.waiter_name = waiter_name  # set, not passed on: not every provider's trigger takes it

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "waiter_name": self.waiter_name}

    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        """`EmrCreateJobFlowOperator.execute_complete`'s return value for a success: the cluster's id."""
        return {"return_value": event.payload["job_flow_id"]}


def cluster_ready_trigger(operator: Any, trigger: Any, end_in_trigger: bool) -> Any:
    """The provider's EmrCreateJobFlowTrigger (or compat's of that name) as `EmrClusterReadyTrigger`, with
    the operator's connection parameters (as `orchard.fruit_features.waits.with_step_logs` gives the step
    waits'); any other trigger as it is."""
    if type(trigger).__name__ != "EmrCreateJobFlowTrigger":
        return trigger
    _, params = trigger.serialize()
    connection = operator_connection(operator)
    return EmrClusterReadyTrigger(
        **{**params, **connection}, waiter_name=trigger.waiter_name, end_in_trigger=end_in_trigger
    )
