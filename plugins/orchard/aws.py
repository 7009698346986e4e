"""AWS clients for orchard's task code: one way to get them, through the run's Airflow connection.

Every client comes from the Amazon provider's `AwsBaseHook` on orchard's connection (`settings.aws_conn_id`),
so credentials, Region, endpoint (the local sandbox under `make up`) and retries are the connection's, as for
the provider's operators in the same DAG: orchard's own calls land in the Region the provider's calls do.
Import inside task callables, never at DAG parse time.
"""

from __future__ import annotations

from typing import Any


def hook(service: str) -> Any:
    """The provider's generic hook for `service` ("s3", "sagemaker", ...), on orchard's connection."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from orchard.settings import load_settings

    return AwsBaseHook(aws_conn_id=load_settings().aws_conn_id, client_type=service)


def client(service: str) -> Any:
    """A boto3 client for `service` on orchard's connection."""
    return hook(service).conn


def clients(*services: str) -> dict[str, Any]:
    """boto3 clients for `services` from ONE session of orchard's connection: {service: client}.

    Each `client(service)` is a hook of its own, hence a session of its own: with the connection's
    `role_arn` one AssumeRole call each, and the provider's user-agent field, which walks the call stack
    (`inspect.stack`, ~1 s in a fresh task process; benchmarks/aerial_pretraining_task_time.py). A task
    that reads several services takes them from one session instead: the same credentials (the role's),
    Region, retries and per-service endpoint (the connection's `endpoint_url` / `service_config`) as the
    provider's `conn`, built as in `AwsBaseHook.get_client_type`. Create them in one thread; a boto3
    client may then be shared by threads (boto3 docs, "Multithreading or multiprocessing with clients").
    """
    hook_ = hook(services[0])
    session = hook_.get_session()
    return {
        service: session.client(
            service,
            endpoint_url=hook_.conn_config.get_service_endpoint_url(service_name=service),
            config=hook_.config,
            verify=hook_.verify,
        )
        for service in services
    }
