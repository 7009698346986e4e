"""The run's cleanup (edge_deployment's teardown): stop its jobs, cancel its IoT job and remove a fleet it
made when the run failed, delete the fleet when asked. Everything is found by its deterministic name.

The same removal runs twice: in `cleanup` (the teardown) and again in `sweep_leftovers` (orchard.sweep),
which must tell what it removed from what was left on purpose, and must decide about the fleet from the
deploy path and the params alone — never from the cleanup's own failure (that would delete a fleet a
successful rollout deployed to)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from orchard import naming
from orchard.edge_deployment.fleet import fleet_spec
from orchard.settings import load_settings

if TYPE_CHECKING:
    from orchard.hooks.iot import FleetRemoval, IotHook

log = logging.getLogger(__name__)

CLEANUP_TASK = "cleanup"


@dataclass(frozen=True)
class RunRemoval:
    """What the run's cleanup removed, apart from what it left on purpose (a fleet or thing not orchard's)."""

    removed: list[str]
    left: list[str]

    def lines(self) -> list[str]:
        return [*self.removed, *self.left]


def deploy_path_not_through(ti: Any, refused: list[str]) -> list[str]:
    """The deploy path's tasks (everything upstream of `cleanup`) that failed or never ran because of a
    failure, by their real states, then `refused` (a rejected or timed-out approval). The same whether the
    cleanup or the sweep asks: the sweep's own upstream includes the cleanup, whose failure says nothing
    about the rollout."""
    from orchard.run_results import failure_causes

    deploy_path = ti.task.dag.get_task(CLEANUP_TASK).get_flat_relative_ids(upstream=True)
    causes = failure_causes(ti, deploy_path)
    return [*causes.failed, *causes.not_run, *refused]


def deletes_fleet(params: dict[str, Any], not_through: list[str], made_by_this_run: bool) -> bool:
    """Delete the fleet when asked (delete_fleet), or when the deploy path did not go through and this run
    created the fleet (a half-made or never-deployed fleet). A fleet an earlier run made stays."""
    return bool(params.get("delete_fleet")) or (bool(not_through) and made_by_this_run)


def cleanup_run(params: dict[str, Any], dag_id: str, run_id: str, failed: list[str]) -> list[str]:
    """The teardown's lines for the report: what `remove_run_resources` removed, then what it left and why."""
    removal = remove_run_resources(params, dag_id, run_id, failed)
    for line in removal.removed:
        log.info("removed %s", line)
    return removal.lines()


def sweep_run_resources(
    params: dict[str, Any], dag_id: str, run_id: str, not_through: list[str]
) -> dict[str, list[str]]:
    """The sweep (orchard.sweep): the cleanup's removal run again by name; teardown -> what it had left."""
    return {CLEANUP_TASK: remove_run_resources(params, dag_id, run_id, not_through).removed}


def remove_run_resources(params: dict[str, Any], dag_id: str, run_id: str, failed: list[str]) -> RunRemoval:
    """Everything is found by its deterministic orchard name, nothing is read from the tasks that made it:

    - the prepare processing job (every attempt) and the Neo compilation job, stopped if still running;
    - the run's IoT job, cancelled if IN_PROGRESS when the run failed (`failed`: the deploy-path tasks that
      did not succeed) or delete_fleet asks; after a successful rollout it stays open for offline devices;
    - the fleet, when `deletes_fleet` says so. A fleet an earlier run made, or one orchard did not create,
      stays.
    """
    from orchard.aws import at_once
    from orchard.hooks.iot import IotHook

    settings = load_settings()
    hook = IotHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
    sagemaker, iot = hook.service_client("sagemaker"), hook.conn  # one session for all, built here
    job_id = naming.resource_name("iot_job", dag_id, run_id)
    reason = "run failed" if failed else "fleet deleted"
    cancels = bool(failed or params.get("delete_fleet"))
    # The SageMaker jobs, the IoT job and the fleet are independent: the jobs are stopped beside the rest,
    # the IoT job's and the fleet's reads go at once, the fleet's removal after the IoT job's cancel.
    with ThreadPoolExecutor(max_workers=1) as pool:
        stopping = pool.submit(stop_run_jobs, sagemaker, dag_id, run_id)
        canceled, group = at_once(
            partial(cancel_iot_job, hook, job_id, reason) if cancels else lambda: [],
            partial(thing_group, iot, params["fleet_name"]),
        )
        fleet = remove_run_fleet(hook, params, job_id, failed, group)
    return RunRemoval([*stopping.result(), *canceled, *fleet.removed], fleet.left)


def stop_run_jobs(sagemaker: Any, dag_id: str, run_id: str) -> list[str]:
    """Stop the run's prepare processing job (every attempt) and its Neo compilation job if still running
    (the two looked up at once)."""
    from orchard.aws import at_once
    from orchard.operators.sagemaker_job_retry import stop_all_attempts

    prepare = naming.resource_name("sagemaker_processing_job", dag_id, run_id, "prepare")
    compilation = naming.resource_name("sagemaker_compilation_job", dag_id, run_id)
    prepares, compiled = at_once(
        partial(stop_all_attempts, sagemaker, "Processing", prepare),
        partial(stop_compilation, sagemaker, compilation),
    )
    return [f"processing job {name} stopped" for name in prepares] + compiled


def stop_compilation(sagemaker: Any, compilation: str) -> list[str]:
    try:
        status = sagemaker.describe_compilation_job(CompilationJobName=compilation)["CompilationJobStatus"]
    except sagemaker.exceptions.ResourceNotFound:
        return []
    if status not in ("INPROGRESS", "STARTING"):
        return []
    sagemaker.stop_compilation_job(CompilationJobName=compilation)
    return [f"Neo compilation job {compilation} stopped"]


def thing_group(iot: Any, name: str) -> dict | None:
    """The thing group's DescribeThingGroup answer, None when there is none."""
    try:
        return iot.describe_thing_group(thingGroupName=name)
    except iot.exceptions.ResourceNotFoundException:
        return None


def cancel_iot_job(hook: IotHook, job_id: str, reason: str) -> list[str]:
    """Cancel the run's IoT job if IN_PROGRESS (force: executions already IN_PROGRESS too)."""
    try:
        status = hook.conn.describe_job(jobId=job_id)["job"]["status"]
    except hook.conn.exceptions.ResourceNotFoundException:
        return []
    if status != "IN_PROGRESS":
        return []
    hook.conn.cancel_job(
        jobId=job_id,
        reasonCode=f"orchard-{reason.replace(' ', '-')}",
        comment=f"orchard: {reason}",
        force=True,
    )
    return [f"IoT job {job_id} canceled ({reason})"]


def remove_run_fleet(
    hook: IotHook, params: dict[str, Any], job_id: str, failed: list[str], group: dict | None
) -> FleetRemoval:
    """The fleet's removal (`IotHook.remove_fleet`) when `deletes_fleet` says so; nothing otherwise. `group`:
    the fleet's DescribeThingGroup answer, None when there is none (read once, for both)."""
    from orchard.hooks.iot import FleetRemoval, created_by

    made_here = group is not None and created_by(group.get("thingGroupProperties")) == job_id
    if not deletes_fleet(params, failed, made_here):
        log.info(
            "the fleet %s stays (things, certificates, secrets): delete_fleet=true deletes it",
            params["fleet_name"],
        )
        return FleetRemoval([], [])
    if not params.get("delete_fleet"):
        log.info(
            "the run failed at %s: removing fleet %s, which this run created",
            ", ".join(failed),
            params["fleet_name"],
        )
    return hook.remove_fleet(fleet_spec(params, "", "", ""), group)
