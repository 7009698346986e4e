"""The run's cleanup (the teardown): what a failed run made goes, what an earlier run made stays."""

from __future__ import annotations

import boto3

from tests.plugins.edge_deployment.samples import DAG_FILE, KEY_ARN


def test_cleanup_cancels_the_iot_job_and_removes_the_fleet_this_failed_run_created(aws):
    """14.1: the cleanup finds the run's IoT job and fleet by name: a failed run leaves no IN_PROGRESS job and
    no fleet it made; a fleet an earlier run made stays, and a successful run keeps its job open."""
    from orchard import naming
    from orchard.edge_deployment.cleanup import cleanup_run
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    iot = boto3.client("iot")

    def start_job(run_id: str, fleet: dict) -> str:
        job_id = naming.resource_name("iot_job", "edge_deployment", run_id)
        iot.create_job(
            jobId=job_id, targets=[fleet["thing_group_arn"]], document="{}", targetSelection="SNAPSHOT"
        )
        return job_id

    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    job = start_job("run-1", fleet)
    assert cleanup_run(params, "edge_deployment", "run-1", []) == []  # success: job open, fleet kept
    assert iot.describe_job(jobId=job)["job"]["status"] == "IN_PROGRESS"

    # run-2 reuses run-1's fleet and fails at deploy: its job is cancelled, the older fleet stays.
    job2 = start_job("run-2", provision_fleet(params, KEY_ARN, "packages/", "captures", "run-2"))
    removed = cleanup_run(params, "edge_deployment", "run-2", ["deploy"])
    assert removed == [f"IoT job {job2} canceled (run failed)"]
    assert iot.describe_job(jobId=job2)["job"]["status"] in ("CANCELED", "CANCELLATION_IN_PROGRESS")
    assert len(iot.list_things()["things"]) == len(params["device_names"])

    # run-3 made the fleet (run-1's was deleted meanwhile) and failed before deploying: all of it goes.
    cleanup_run({**params, "delete_fleet": True}, "edge_deployment", "run-1", [])
    provision_fleet(params, KEY_ARN, "packages/", "captures", "run-3")
    removed = cleanup_run(params, "edge_deployment", "run-3", ["ensure_fleet", "deploy"])
    assert f"thing group {params['fleet_name']}" in removed
    assert iot.list_things()["things"] == [] and iot.list_thing_groups()["thingGroups"] == []
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


def test_the_cleanup_is_a_teardown_that_runs_whatever_failed_and_fails_the_run_when_it_fails():
    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    cleanup = dag.get_task("cleanup")
    assert cleanup.is_teardown and cleanup.on_failure_fail_dagrun
    assert cleanup.trigger_rule == "all_done_setup_success"
    # its one setup is the validation (nothing billable exists before it): a failed ensure_fleet still
    # gets its half-made fleet removed; it waits for every task that starts something billable.
    assert [t.task_id for t in cleanup.upstream_list if t.is_setup] == ["validate_model"]
    assert {"prepare", "compile", "deploy"} <= cleanup.upstream_task_ids
