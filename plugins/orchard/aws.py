"""AWS clients for orchard's task code: one way to get them, through the run's Airflow connection.

Every client comes from the Amazon provider's `AwsBaseHook` on orchard's connection (`settings.aws_conn_id`),
so credentials, Region, endpoint (the local sandbox under `make up`) and retries are the connection's, as for
the provider's operators in the same DAG: orchard's own calls land in the Region the provider's calls do.
Import inside task callables, never at DAG parse time.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any


def hook(service: str) -> Any:
    """The provider's generic hook for `service` ("s3", "sagemaker", ...), on orchard's connection."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from orchard.settings import load_settings

    return AwsBaseHook(aws_conn_id=load_settings().aws_conn_id, client_type=service)


def client(service: str) -> Any:
    """A boto3 client for `service` on orchard's connection."""
    return hook(service).conn


class SessionClients:
    """Clients of several services on ONE session of a provider hook: one AssumeRole (the connection's
    `role_arn`) and one client config per task, instead of one of each per service.

    Each provider hook builds its own session (with `role_arn`: a session for the connection's keys, an STS
    client and an AssumeRole call) and, for each client, a config whose user agent names the calling
    operator by walking the whole call stack with `inspect.stack()` (base_aws `_get_caller`; 0.3-0.5 s a
    client in a fresh task process: benchmarks/edge_deployment_task_time.py). Credentials, Region, retries
    and each service's endpoint (`conn_config.get_service_endpoint_url`) are the hook's, as its own `conn`
    gets them. Build and use it in one thread (a boto3 session is not thread-safe; its clients are)."""

    def __init__(self, base_hook: Any):
        self.hook = base_hook
        self._clients: dict[str, Any] = {}

    @cached_property
    def session(self) -> Any:
        return self.hook.get_session(region_name=self.hook.region_name)

    @cached_property
    def config(self) -> Any:
        return self.hook._get_config()  # the provider's config + its user agent, as its `conn` builds it

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                endpoint_url=self.hook.conn_config.get_service_endpoint_url(service_name=service),
                config=self.config,
                verify=self.hook.verify,
            )
        return self._clients[service]


def clients() -> SessionClients:
    """One session's clients on orchard's connection, for a task that calls several services."""
    return SessionClients(hook("sts"))
