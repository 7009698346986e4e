"""AWS clients for orchard's task code: one way to get them, through the run's Airflow connection.

Every client comes from the Amazon provider's `AwsBaseHook` on orchard's connection (`settings.aws_conn_id`),
so credentials, Region, endpoint (the local sandbox under `make up`) and retries are the connection's, as for
the provider's operators in the same DAG: orchard's own calls land in the Region the provider's calls do.
Import inside task callables, never at DAG parse time.

A task that already holds its settings passes `conn_id` (reading the settings again costs one Airflow
Variable lookup per field not in the environment: an execution-API round trip each, a Secrets Manager call
each with that backend). A task that calls several services takes their clients from ONE session
(`clients`, or `SessionClients` when which services it needs is only known as it goes): each hook builds a
session of its own (with the connection's `role_arn`: an STS client and an AssumeRole call), and each
client a config whose user agent names the calling operator by walking the call stack with
`inspect.stack()` (base_aws `_get_caller`: 0.3-1 s a client in a task process on the loaded stack).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any


def hook(service: str, conn_id: str | None = None) -> Any:
    """The provider's generic hook for `service` ("s3", "sagemaker", ...), on orchard's connection
    (`conn_id`, default: the settings' `aws_conn_id`)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    if conn_id is None:
        from orchard.settings import load_settings

        conn_id = load_settings().aws_conn_id
    return AwsBaseHook(aws_conn_id=conn_id, client_type=service)


def client(service: str, conn_id: str | None = None, max_pool_connections: int | None = None) -> Any:
    """A boto3 client for `service` on orchard's connection. `max_pool_connections`: for a client shared by
    that many threads (botocore keeps 10 connections: an 11th thread's call opens and drops one)."""
    aws_hook = hook(service, conn_id)
    if max_pool_connections is None:
        return aws_hook.conn
    from botocore.config import Config

    config = (aws_hook.config or Config()).merge(Config(max_pool_connections=max_pool_connections))
    return aws_hook.get_client_type(config=config)


class SessionClients:
    """Clients of several services on ONE session of a provider hook, made when first asked for.

    Each is built as the provider's `AwsBaseHook.get_client_type` builds its own: the hook's Region, the
    connection's endpoint for that service, the provider's botocore config with its user agent, `verify`.
    Only the session (so the credentials and the AssumeRole behind them) and the config are shared. Build
    clients in one thread (a boto3 session is not thread-safe); a client may then be shared by threads."""

    def __init__(self, base_hook: Any, max_pool_connections: int | None = None):
        self.hook = base_hook
        self.max_pool_connections = max_pool_connections  # as `client`'s: for clients shared by threads
        self._clients: dict[str, Any] = {}

    @cached_property
    def session(self) -> Any:
        return self.hook.get_session(region_name=self.hook.region_name)

    @cached_property
    def config(self) -> Any:
        config = self.hook._get_config()  # the provider's config + its user agent, as its `conn` builds it
        if self.max_pool_connections is None:
            return config
        from botocore.config import Config

        return config.merge(Config(max_pool_connections=self.max_pool_connections))

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                endpoint_url=self.hook.conn_config.get_service_endpoint_url(service_name=service),
                config=self.config,
                verify=self.hook.verify,
            )
        return self._clients[service]


def session_clients(conn_id: str | None = None, max_pool_connections: int | None = None) -> SessionClients:
    """One session's clients on orchard's connection, made as the task asks for them."""
    return SessionClients(hook("sts", conn_id), max_pool_connections)


def clients(*services: str, conn_id: str | None = None) -> tuple[Any, ...]:
    """boto3 clients for `services`, in that order, on ONE session of orchard's connection."""
    shared = session_clients(conn_id)
    return tuple(shared.client(service) for service in services)


def at_once(*calls: Callable[[], Any], limit: int | None = None) -> list[Any]:
    """Each call's result, in the order given, the calls made at the same time (independent AWS requests:
    boto3 clients are thread-safe; build them before, in one thread), at most `limit` at once. The first
    call's error in that order is raised once every call has ended, so nothing is left running behind it."""
    if not calls:
        return []
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(calls), limit or len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]
