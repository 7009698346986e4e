"""One provider hook's session and a client per service, as the AWS-session benchmarks time it."""

from __future__ import annotations


def hook_session_clients(services: tuple[str, ...]) -> list:
    """orchard's connection (aws_default) → one AwsBaseHook → its session → a client for each service, built as
    the hook's own `conn` is (the connection's endpoint for the service, its config and verify)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id="aws_default", client_type=services[0])
    session = hook.get_session()
    return [
        session.client(
            service,
            endpoint_url=hook.conn_config.get_service_endpoint_url(service),
            config=hook.config,
            verify=hook.verify,
        )
        for service in services
    ]
