"""orchard.aws: clients on orchard's connection; SessionClients, several services on one session."""

from __future__ import annotations

import json

import boto3

from local_aws import aws_connection
from local_aws.iam_setup import ACCOUNT


def _role_on_aws_default(monkeypatch, sandbox_url: str) -> str:
    """orchard's connection with a role_arn (as the local stack's): its hooks assume the role."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = boto3.client("iam")
    role_arn = iam.create_role(RoleName="clients-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    iam.put_role_policy(
        RoleName="clients-role",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(sandbox_url, role_arn=role_arn))
    return role_arn


def test_one_session_serves_every_service_with_the_roles_credentials(aws, monkeypatch, sessions_built):
    from orchard import aws as orchard_aws

    _role_on_aws_default(monkeypatch, aws.url)
    clients = orchard_aws.clients()

    identity = clients.client("sts").get_caller_identity()
    clients.client("s3").create_bucket(Bucket="clients-bucket")
    assert clients.client("iot").list_thing_groups()["thingGroups"] == []
    assert clients.client("s3") is clients.client("s3")  # one client per service

    assert len(sessions_built) == 1  # one AssumeRole for all four services
    assert identity["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/clients-role/")
    # the connection's endpoint (the sandbox) and Region, as a hook's own client has them
    assert clients.client("s3").meta.endpoint_url == aws.url
    assert clients.client("iot").meta.region_name == orchard_aws.hook("iot").conn.meta.region_name
    assert "Airflow/" in clients.client("iot").meta.config.user_agent_extra  # the provider's user agent
