"""The run's cleanup (edge_deployment's teardown): stop its jobs, cancel its IoT job and remove a fleet it
made when the run failed, delete the fleet when asked. Everything is found by its deterministic name."""

from __future__ import annotations

import logging
from typing import Any

from orchard import naming
from orchard.edge_deployment.fleet import fleet_spec
from orchard.settings import load_settings

log = logging.getLogger(__name__)


def cleanup_run(params: dict[str, Any], dag_id: str, run_id: str, failed: list[str]) -> list[str]:
    """The run's cleanup (a teardown: runs whenever the run ends, whatever failed; its failure fails the run).
    Everything is found by its deterministic orchard name, nothing is read from the tasks that made it:

    - the prepare processing job (every attempt) and the Neo compilation job, stopped if still running;
    - the run's IoT job, cancelled if IN_PROGRESS when the run failed (`failed`: the deploy-path tasks that
      did not succeed) or delete_fleet asks; after a successful rollout it stays open for offline devices;
    - the fleet: deleted with delete_fleet, or when the run failed and this run created it (its thing group
      records the creating run): a half-made or never-deployed fleet. A fleet an earlier run made, or one
      orchard did not create, stays.
    """
    from orchard import aws
    from orchard.hooks.iot import IotHook, created_by
    from orchard.operators.sagemaker_job_retry import stop_all_attempts

    settings = load_settings()
    sagemaker = aws.client("sagemaker")
    removed = [
        f"processing job {name} stopped"
        for name in stop_all_attempts(
            sagemaker,
            "Processing",
            naming.resource_name("sagemaker_processing_job", dag_id, run_id, "prepare"),
        )
    ]
    compilation = naming.resource_name("sagemaker_compilation_job", dag_id, run_id)
    try:
        status = sagemaker.describe_compilation_job(CompilationJobName=compilation)["CompilationJobStatus"]
    except sagemaker.exceptions.ResourceNotFound:
        status = None
    if status in ("INPROGRESS", "STARTING"):
        sagemaker.stop_compilation_job(CompilationJobName=compilation)
        removed.append(f"Neo compilation job {compilation} stopped")
    hook = IotHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
    job_id = naming.resource_name("iot_job", dag_id, run_id)
    if failed or params.get("delete_fleet"):
        try:
            job_status = hook.conn.describe_job(jobId=job_id)["job"]["status"]
        except hook.conn.exceptions.ResourceNotFoundException:
            job_status = None
        if job_status == "IN_PROGRESS":
            reason = "run failed" if failed else "fleet deleted"
            hook.conn.cancel_job(
                jobId=job_id,
                reasonCode=f"orchard-{reason.replace(' ', '-')}",
                comment=f"orchard: {reason}",
                force=True,
            )
            removed.append(f"IoT job {job_id} canceled ({reason})")
    try:
        group = hook.conn.describe_thing_group(thingGroupName=params["fleet_name"])
    except hook.conn.exceptions.ResourceNotFoundException:
        group = None
    made_here = group is not None and created_by(group.get("thingGroupProperties")) == job_id
    if params.get("delete_fleet") or (failed and made_here):
        if not params.get("delete_fleet"):
            log.info(
                "the run failed at %s: removing fleet %s, which this run created",
                ", ".join(failed),
                params["fleet_name"],
            )
        removed += hook.delete_fleet(fleet_spec(params, "", "", ""))
    else:
        log.info(
            "the fleet %s stays (things, certificates, secrets): delete_fleet=true deletes it",
            params["fleet_name"],
        )
    for line in removed:
        log.info("removed %s", line)
    return removed
