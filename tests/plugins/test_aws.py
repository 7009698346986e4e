"""orchard.aws: clients through orchard's Airflow connection."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from orchard import aws as orchard_aws


def test_clients_of_several_services_come_from_one_session(aws, monkeypatch):
    sessions = []
    get_session = AwsBaseHook.get_session

    def counting(self, *args, **kwargs):
        sessions.append(get_session(self, *args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(AwsBaseHook, "get_session", counting)

    clients = orchard_aws.clients("s3", "sagemaker", "cloudwatch")

    assert len(sessions) == 1  # one session (one AssumeRole with a role_arn), not one per service
    assert {name: client.meta.service_model.service_name for name, client in clients.items()} == {
        "s3": "s3",
        "sagemaker": "sagemaker",
        "cloudwatch": "cloudwatch",
    }
    # the connection's endpoint and Region, as the provider's own `conn` has them: the calls land there
    expected = AwsBaseHook(aws_conn_id="aws_default", client_type="s3").conn
    assert clients["s3"].meta.endpoint_url == expected.meta.endpoint_url
    assert clients["s3"].meta.region_name == expected.meta.region_name
    assert clients["sagemaker"].list_models()["Models"] == []
