"""AWS clients for orchard's task code: one way to get them, through the run's Airflow connection.

Every client comes from the Amazon provider's `AwsBaseHook` on orchard's connection (`settings.aws_conn_id`),
so credentials, Region, endpoint (the local sandbox under `make up`) and retries are the connection's, as for
the provider's operators in the same DAG: orchard's own calls land in the Region the provider's calls do.
Import inside task callables, never at DAG parse time.

A task that already holds its settings passes `conn_id` (reading the settings again costs one Airflow
Variable lookup per field not in the environment: an execution-API round trip each, a Secrets Manager call
each with that backend). A task that needs several services takes them from `clients`: one session, so the
connection is read, its credentials resolved and its role assumed once, not once per service.
"""

from __future__ import annotations

from typing import Any


def hook(service: str, conn_id: str | None = None) -> Any:
    """The provider's generic hook for `service` ("s3", "sagemaker", ...), on orchard's connection
    (`conn_id`, default: the settings' `aws_conn_id`)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    if conn_id is None:
        from orchard.settings import load_settings

        conn_id = load_settings().aws_conn_id
    return AwsBaseHook(aws_conn_id=conn_id, client_type=service)


def client(service: str, conn_id: str | None = None) -> Any:
    """A boto3 client for `service` on orchard's connection."""
    return hook(service, conn_id).conn


def clients(*services: str, conn_id: str | None = None) -> tuple[Any, ...]:
    """boto3 clients for `services`, in that order, on ONE session of orchard's connection.

    Each is built as the provider's `AwsBaseHook.get_client_type` builds its own (the hook's Region, the
    connection's endpoint for that service, botocore config with the provider's user agent, verify); only
    the session, and so the credentials and the AssumeRole behind them, is shared."""
    base = hook(services[0], conn_id)
    session = base.get_session(region_name=base.region_name)
    # the provider's config: the connection's plus its user agent, which it finds by walking the caller's
    # stack with inspect.stack() (~0.5 s in a task process on the loaded stack): once, for every client
    config = base._get_config()
    return tuple(
        session.client(
            service,
            endpoint_url=base.conn_config.get_service_endpoint_url(service_name=service),
            config=config,
            verify=base.verify,
        )
        for service in services
    )
