"""The run's cleanup (the teardown): what a failed run made goes, what an earlier run made stays."""

from __future__ import annotations

import json

import boto3
import pytest

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


def test_the_sweep_is_last_all_done_behind_the_cleanup_and_the_runs_only_leaf():
    """The second line of defence (orchard.sweep): after the cleanup and the report, whatever happened; the
    run's only leaf, so it carries the run's state."""
    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    sweep = dag.get_task("sweep_leftovers")
    assert sweep.trigger_rule == "all_done" and not sweep.is_teardown
    assert sweep.upstream_task_ids >= {"cleanup", "report"}
    assert [t.task_id for t in dag.leaves] == ["sweep_leftovers"]
    assert sweep.get_flat_relative_ids(upstream=True) == set(dag.task_ids) - {"sweep_leftovers"}


def test_the_fleet_goes_when_asked_or_when_this_run_made_it_and_the_deploy_path_did_not_go_through():
    from orchard.edge_deployment.cleanup import deletes_fleet

    assert deletes_fleet({"delete_fleet": True}, [], made_by_this_run=False)
    assert deletes_fleet({"delete_fleet": False}, ["deploy"], made_by_this_run=True)
    assert not deletes_fleet({"delete_fleet": False}, ["deploy"], made_by_this_run=False)  # an earlier run's
    assert not deletes_fleet({"delete_fleet": False}, [], made_by_this_run=True)  # deployed: it stays


class _TaskInstance:
    """What failure_causes reads of a RuntimeTaskInstance: its task, run, and the run's task states."""

    def __init__(self, dag, task_id: str, states: dict[str, str]):
        self.task, self.dag_id, self.run_id, self._states = dag.get_task(task_id), dag.dag_id, "run-1", states

    def get_task_states(self, dag_id, task_ids, run_ids):
        return {self.run_id: {t: self._states[t] for t in task_ids if t in self._states}}


def test_the_sweep_judges_the_deploy_path_not_the_failed_cleanup():
    """A failed cleanup after a successful rollout must not make the sweep delete the fleet deployed to: the
    sweep's own upstream includes the cleanup, the deploy path does not."""
    from orchard.edge_deployment.cleanup import deploy_path_not_through
    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    states = {task_id: "success" for task_id in dag.task_ids} | {"cleanup": "failed", "report": "failed"}
    sweep = _TaskInstance(dag, "sweep_leftovers", states)
    assert deploy_path_not_through(sweep, []) == []
    assert deploy_path_not_through(sweep, ["approve_rollout"]) == ["approve_rollout"]

    states |= {"deploy": "failed", "monitor": "upstream_failed"}
    assert deploy_path_not_through(_TaskInstance(dag, "sweep_leftovers", states), []) == ["deploy"]


def test_the_sweep_removes_what_a_cleanup_that_never_ran_left_and_names_only_removals(aws):
    """The cleanup failed before its AWS calls (delete_fleet on, as the fault harness asks): the sweep
    cancels the IN_PROGRESS IoT job and deletes the fleet orchard made, by name; run again it finds nothing.
    A fleet orchard did not create is left and is not a removal (cleanup_run's report line says why)."""
    from orchard import naming
    from orchard.edge_deployment.cleanup import cleanup_run, sweep_run_resources
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag
    from tests.faults.pipelines import inventory

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    params["delete_fleet"] = True
    iot, secrets = boto3.client("iot"), boto3.client("secretsmanager")
    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    job_id = naming.resource_name("iot_job", "edge_deployment", "run-1")
    iot.create_job(
        jobId=job_id, targets=[fleet["thing_group_arn"]], document="{}", targetSelection="SNAPSHOT"
    )

    left = inventory()  # what the fault harness counts as left behind: the job and every part of the fleet
    for kind in ("IoT job", "IoT thing ", "IoT thing group", "Secrets Manager secret", "IoT certificate"):
        assert any(line.startswith(kind) for line in left), (kind, left)
    assert {"IoT policy", "IoT role alias"} <= {line.rsplit(" ", 1)[0] for line in left}

    swept = sweep_run_resources(params, "edge_deployment", "run-1", [])
    assert list(swept) == ["cleanup"]
    assert swept["cleanup"][0] == f"IoT job {job_id} canceled (fleet deleted)"
    assert f"thing group {params['fleet_name']}" in swept["cleanup"]
    assert {f"thing {name}" for name in params["device_names"]} <= set(swept["cleanup"])
    assert iot.describe_job(jobId=job_id)["job"]["status"] in ("CANCELED", "CANCELLATION_IN_PROGRESS")
    assert iot.list_things()["things"] == [] and iot.list_thing_groups()["thingGroups"] == []
    assert secrets.list_secrets()["SecretList"] == []
    assert inventory() == []
    assert sweep_run_resources(params, "edge_deployment", "run-1", []) == {"cleanup": []}

    iot.create_thing_group(thingGroupName=params["fleet_name"])  # not orchard's: never touched
    assert sweep_run_resources(params, "edge_deployment", "run-2", ["deploy"]) == {"cleanup": []}
    note = f"nothing: thing group {params['fleet_name']} is not orchard's (left as it is)"
    assert cleanup_run(params, "edge_deployment", "run-2", ["deploy"]) == [note]
    assert [g["groupName"] for g in iot.list_thing_groups()["thingGroups"]] == [params["fleet_name"]]


def test_a_fleet_removal_cut_short_is_completed_by_the_next_one(aws, monkeypatch):
    """The group marks the fleet as orchard's and each thing its secret: they go last, so a removal that
    stopped half-way (the cleanup's worker lost) leaves what the sweep's removal can still find and finish."""
    from orchard.edge_deployment.fleet import fleet_spec, provision_fleet
    from orchard.hooks.iot import IotHook
    from tests.dag_files import load_dag
    from tests.faults.pipelines import inventory

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    spec = fleet_spec(params, "", "", "")
    cut_short = IotHook(aws_conn_id="aws_default")

    def lost(**_):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(cut_short.conn, "delete_role_alias", lost)
    with pytest.raises(RuntimeError, match="worker lost"):
        cut_short.remove_fleet(spec)
    assert f"IoT thing group {params['fleet_name']}" in inventory()

    removal = IotHook(aws_conn_id="aws_default").remove_fleet(spec)
    # The role alias goes beside the devices, the policy after them: the cut at the alias left the policy too.
    assert removal.removed == [
        f"policy {spec.policy_name}",
        f"role alias {spec.role_alias}",
        f"role {spec.role_name}",
        f"thing group {spec.fleet_name}",
    ]
    assert inventory() == []


def test_the_cleanup_calls_every_service_on_one_session(aws, sessions_built):
    """IoT, SageMaker, Secrets Manager and IAM: one session (with the connection's role_arn, one AssumeRole),
    not one hook per service; the fleet still goes when asked."""
    from orchard.edge_deployment.cleanup import cleanup_run
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    sessions_built.clear()  # provisioning's own

    removed = cleanup_run({**params, "delete_fleet": True}, "edge_deployment", "run-1", [])

    assert f"thing group {params['fleet_name']}" in removed
    assert any(line.startswith("secret ") for line in removed) and any(
        line.startswith("role ") for line in removed
    )
    assert sessions_built == ["iot"]


def test_the_fleet_removal_removes_its_devices_at_once_in_the_order_aws_requires(aws, api_calls):
    """The devices' removals are independent: each device's first read waits here for the other's, which
    one device after the other never comes. Within them AWS's order holds: a certificate is deleted after it
    is detached from its thing and policy and made INACTIVE (DeleteCertificate), the policy after every
    certificate is detached (DeletePolicy), a thing after its certificate and secret, the group last."""
    from orchard.edge_deployment.cleanup import cleanup_run
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    api_calls.clear()
    api_calls.meet({"DescribeThing"}, len(fleet["devices"]))

    removed = cleanup_run({**params, "delete_fleet": True}, "edge_deployment", "run-1", [])

    assert f"thing group {params['fleet_name']}" in removed
    order = [name for name, _ in api_calls]
    position = {(name, json.dumps(p, sort_keys=True)): i for i, (name, p) in enumerate(api_calls)}

    def at(name: str, **given) -> int:
        return next(
            i for (n, p), i in position.items() if n == name and given.items() <= json.loads(p).items()
        )

    for device in fleet["devices"]:
        cert_id, cert_arn = device["certificate_id"], device["certificate_arn"]
        deleted = at("DeleteCertificate", certificateId=cert_id)
        assert at("DetachThingPrincipal", principal=cert_arn) < deleted
        assert at("DetachPolicy", target=cert_arn) < deleted < at("DeletePolicy")
        assert at("UpdateCertificate", certificateId=cert_id) < deleted
        assert deleted < at("DeleteSecret", SecretId=device["secret_name"])
        assert at("DeleteSecret", SecretId=device["secret_name"]) < at(
            "DeleteThing", thingName=device["thing_name"]
        )
    assert at("DeleteRolePolicy") < at("DeleteRole")
    assert order[-1] == "DeleteThingGroup"
    assert order.count("DescribeThingGroup") == 1  # read once for the cleanup's decision and the removal


def test_a_certificate_left_inactive_by_a_removal_cut_short_is_deleted_by_the_next_one(aws, monkeypatch):
    """A removal that stopped after making a certificate INACTIVE, before deleting it: the next removal still
    finds it through the device's secret and deletes it (it used to look for an ACTIVE one only, then delete
    the secret, the certificate's only record)."""
    from orchard.edge_deployment.fleet import fleet_spec, provision_fleet
    from orchard.hooks.iot import IotHook
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    spec = fleet_spec(params, "", "", "")
    cut_short = IotHook(aws_conn_id="aws_default")

    def lost(**_):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(cut_short.conn, "delete_certificate", lost)
    with pytest.raises(RuntimeError, match="worker lost"):
        cut_short.remove_fleet(spec)
    iot = boto3.client("iot")
    assert "INACTIVE" in {c["status"] for c in iot.list_certificates()["certificates"]}  # cut there

    removal = IotHook(aws_conn_id="aws_default").remove_fleet(spec)
    for device in fleet["devices"]:
        assert f"certificate {device['certificate_id'][:12]}..." in removal.removed
    assert iot.list_certificates()["certificates"] == []


def test_a_sweep_that_finds_nothing_reads_at_once_and_builds_no_client_it_does_not_use(
    aws, api_calls, monkeypatch
):
    """After a cleanup that finished, the sweep's removal only looks: the SageMaker jobs, the IoT job and the
    thing group are read at once (they wait here for each other), then the devices; no Secrets Manager or
    IAM client is built for devices and a role that are not there (a client build is ~0.1-0.3 s)."""
    from orchard import aws as orchard_aws
    from orchard.edge_deployment.cleanup import sweep_run_resources
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    built, client = [], orchard_aws.SessionClients.client

    def building(self, service):
        built.append(service)
        return client(self, service)

    monkeypatch.setattr(orchard_aws.SessionClients, "client", building)
    api_calls.meet({"DescribeProcessingJob", "DescribeJob", "DescribeThingGroup"}, 3)

    swept = sweep_run_resources({**params, "delete_fleet": True}, "edge_deployment", "run-1", [])

    assert swept == {"cleanup": []}
    assert set(built) == {"iot", "sagemaker"}
    assert {name for name, _ in api_calls} <= {
        "DescribeProcessingJob",
        "DescribeCompilationJob",
        "DescribeJob",
        "DescribeThingGroup",
        "DescribeThing",
    }


def test_a_certificate_refused_while_its_detachment_propagates_is_deleted_on_a_retry(aws, api_calls):
    """DetachThingPrincipal "might take several seconds for the detachment to propagate"
    (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html; the sandbox takes
    local_aws.iot.DETACH_PROPAGATION_S): DeleteCertificate right after it answers DeleteConflictException.
    The removal retries it and the fleet goes; every certificate is detached before the first deletion, so
    the devices' waits overlap."""
    from orchard.edge_deployment.cleanup import cleanup_run
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    api_calls.clear()

    removed = cleanup_run({**params, "delete_fleet": True}, "edge_deployment", "run-1", [])

    assert f"thing group {params['fleet_name']}" in removed
    assert boto3.client("iot").list_certificates()["certificates"] == []
    order = [name for name, _ in api_calls]
    assert max(i for i, name in enumerate(order) if name == "DetachThingPrincipal") < order.index(
        "DeleteCertificate"
    )
    for device in fleet["devices"]:
        tries = [p for name, p in api_calls if name == "DeleteCertificate"]
        assert (
            sum(p["certificateId"] == device["certificate_id"] for p in tries) >= 2
        )  # refused, then deleted
        assert f"thing {device['thing_name']}" in removed


def test_a_detachment_that_never_propagates_fails_the_removal_naming_what_is_still_attached(aws, monkeypatch):
    from local_aws import iot as sandbox_iot
    from orchard.edge_deployment.fleet import fleet_spec, provision_fleet
    from orchard.hooks import iot as iot_hook
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")
    monkeypatch.setattr(sandbox_iot, "DETACH_PROPAGATION_S", 120.0)
    monkeypatch.setattr(iot_hook, "DETACH_WAITS_S", (0.1, 0.2))

    with pytest.raises(iot_hook.StillAttachedError) as failure:
        iot_hook.IotHook(aws_conn_id="aws_default").remove_fleet(fleet_spec(params, "", "", ""))

    device = next(d for d in fleet["devices"] if d["certificate_arn"] in str(failure.value))
    assert f"is still attached to thing {device['thing_name']} 0.3 s after it was detached" in str(
        failure.value
    )
    assert "DeleteConflictException" in str(failure.value)
    assert len(boto3.client("iot").list_things()["things"]) == len(fleet["devices"])  # nothing half-deleted


def test_a_thing_refused_as_still_attached_is_deleted_on_a_retry_and_other_refusals_are_not_retried(
    monkeypatch,
):
    """DeleteThing's refusal of a thing whose principal's detachment has not propagated ("Cannot delete.
    Thing ... is still attached to one or more principals", InvalidRequestException) is retried; an
    InvalidRequestException for anything else is raised at once."""
    from botocore.exceptions import ClientError

    from orchard.hooks import iot as iot_hook

    monkeypatch.setattr(iot_hook, "DETACH_WAITS_S", (0.01, 0.01, 0.01))
    attached = "Cannot delete. Thing dev-1 is still attached to one or more principals"
    answers = [
        ClientError({"Error": {"Code": "InvalidRequestException", "Message": attached}}, "DeleteThing")
    ]
    answers.append({"ResponseMetadata": {}})

    def delete_thing():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert iot_hook._once_detached(delete_thing, "thing dev-1", list) == {"ResponseMetadata": {}}
    assert answers == []

    other = ClientError({"Error": {"Code": "InvalidRequestException", "Message": "bad name"}}, "DeleteThing")
    calls = []

    def refused():
        calls.append(1)
        raise other

    with pytest.raises(ClientError, match="bad name"):
        iot_hook._once_detached(refused, "thing dev-1", list)
    assert calls == [1]
