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
