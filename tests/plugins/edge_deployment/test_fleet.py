"""The fleet: devices keep their identity across runs, rotation is asked for, deletion is explicit."""

from __future__ import annotations

import boto3
import pytest

from tests.plugins.edge_deployment.samples import DAG_FILE, KEY_ARN


def test_devices_keep_their_identity_across_runs_and_deleting_the_fleet_is_explicit(aws):
    """Issue 12: each run made new certificates and deleted them at its end (cleanup=true by default). Now the
    DAG's defaults keep the fleet, a second run reuses each certificate, rotation is asked for, and
    delete_fleet removes only what orchard recorded as its own."""
    from local_aws.demo_data.edge_deployment import DEVICES
    from orchard.edge_deployment.cleanup import cleanup_run
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    assert "cleanup" not in params
    assert params["delete_fleet"] is False and params["rotate_certificates"] is False
    iot = boto3.client("iot")
    first = provision_fleet(params, KEY_ARN, "packages/", "captures")
    assert cleanup_run(params, "edge_deployment", "run-1", []) == []  # the run ends: nothing is deleted
    second = provision_fleet(params, KEY_ARN, "packages/", "captures")
    certificates = [d["certificate_arn"] for d in first["devices"]]
    assert [d["certificate_arn"] for d in second["devices"]] == certificates
    assert {d["certificate"] for d in second["devices"]} == {"kept"}
    for device in first["devices"]:
        described = iot.describe_certificate(certificateId=device["certificate_id"])["certificateDescription"]
        assert described["status"] == "ACTIVE"

    rotated = provision_fleet({**params, "rotate_certificates": True}, KEY_ARN, "packages/", "captures")
    old, new = first["devices"][0], rotated["devices"][0]
    assert new["certificate_arn"] != old["certificate_arn"]
    assert iot.list_thing_principals(thingName=new["thing_name"])["principals"] == [new["certificate_arn"]]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=old["certificate_id"])

    # A certificate someone else attached to an orchard thing survives the fleet's deletion, and so does
    # the thing.
    foreign = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=DEVICES[1], principal=foreign["certificateArn"])
    removed = cleanup_run({**params, "delete_fleet": True}, "edge_deployment", "run-3", [])
    assert f"thing {DEVICES[0]}" in removed and f"thing group {params['fleet_name']}" in removed
    assert any(line.startswith(f"thing {DEVICES[1]} kept") for line in removed)
    assert [t["thingName"] for t in iot.list_things()["things"]] == [DEVICES[1]]
    assert iot.list_thing_principals(thingName=DEVICES[1])["principals"] == [foreign["certificateArn"]]
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


def test_a_new_fleet_is_provisioned_with_its_independent_calls_at_once(aws, api_calls):
    """What the devices need (the thing type, the role chain, the two endpoints) is made at once, then the
    devices at once: each group of calls waits here for its others, which one after the other never come.
    The order AWS needs holds: things after their type, a certificate's policy after the policy exists."""
    from orchard.edge_deployment.fleet import provision_fleet
    from tests.dag_files import load_dag

    params = {name: param.value for name, param in load_dag(DAG_FILE).params.items()}
    devices = len(params["device_names"])
    api_calls.meet({"CreateThingType", "DescribeEndpoint"}, 3)
    api_calls.meet({"DescribeThing"}, devices)

    fleet = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-1")

    assert {d["certificate"] for d in fleet["devices"]} == {"created"}
    order = [name for name, _ in api_calls]
    assert order.index("CreateThingType") < order.index("CreateThing")
    assert order.index("CreatePolicy") < order.index("AttachPolicy")
    assert order.count("DescribeThingGroup") == 1  # the group's ARN comes with CreateThingGroup's answer
    again = provision_fleet(params, KEY_ARN, "packages/", "captures", "run-2")
    assert again["thing_group_arn"] == fleet["thing_group_arn"]
    assert [d["certificate_arn"] for d in again["devices"]] == [
        d["certificate_arn"] for d in fleet["devices"]
    ]
