"""orchard.aws: clients on orchard's connection, several services on one session."""

from __future__ import annotations

import pytest
from airflow.providers.amazon.aws.hooks import base_aws  # first: it imports orchard.aws_session

import orchard.settings
from local_aws import aws_connection
from local_aws.iam_setup import ACCOUNT
from orchard import aws as orchard_aws
from tests.plugins.conftest import create_role_the_account_assumes

SERVICES = ("s3", "sqs", "batch")


def test_clients_are_the_hooks_own_on_one_session(aws, monkeypatch):
    sessions = []
    create_session = base_aws.SessionFactory.create_session

    def counting(self, *args, **kwargs):
        sessions.append(create_session(self, *args, **kwargs))
        return sessions[-1]

    user_agents = []
    generate = base_aws.AwsGenericHook._generate_user_agent_extra_field

    def counting_user_agent(self, *args, **kwargs):
        user_agents.append(generate(self, *args, **kwargs))
        return user_agents[-1]

    monkeypatch.setattr(base_aws.SessionFactory, "create_session", counting)
    monkeypatch.setattr(base_aws.AwsGenericHook, "_generate_user_agent_extra_field", counting_user_agent)
    made = orchard_aws.clients(*SERVICES, conn_id="aws_default")
    # one session, and the provider's user agent (a walk of the caller's stack, ~0.5 s a task) found once
    assert (len(sessions), len(user_agents)) == (1, 1)

    for service, client in zip(SERVICES, made, strict=True):
        own = base_aws.AwsBaseHook(aws_conn_id="aws_default", client_type=service).conn
        assert client.meta.service_model.service_name == service
        assert (client.meta.endpoint_url, client.meta.region_name) == (
            own.meta.endpoint_url,
            own.meta.region_name,
        )
        assert client.meta.config.user_agent_extra == own.meta.config.user_agent_extra
    s3, sqs, batch = made
    assert all(
        answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        for answer in (s3.list_buckets(), sqs.list_queues(), batch.describe_job_queues())
    )


def test_a_client_for_a_named_connection_reads_no_settings(aws, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("settings read: each read looks up every Airflow Variable the environment lacks")

    monkeypatch.setattr(orchard.settings, "load_settings", refuse)
    assert "Buckets" in orchard_aws.client("s3", conn_id="aws_default").list_buckets()
    assert orchard_aws.clients("s3", conn_id="aws_default")[0].list_buckets()["Buckets"] is not None
    with pytest.raises(AssertionError, match="settings read"):
        orchard_aws.client("s3")


def _role_on_aws_default(monkeypatch, sandbox_url: str) -> str:
    """orchard's connection with a role_arn (as the local stack's): its hooks assume the role."""
    role_arn = create_role_the_account_assumes("clients-role", allow_everything=True)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(sandbox_url, role_arn=role_arn))
    return role_arn


def test_one_session_serves_every_service_with_the_roles_credentials(aws, monkeypatch, sessions_built):
    _role_on_aws_default(monkeypatch, aws.url)
    clients = orchard_aws.session_clients()

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
