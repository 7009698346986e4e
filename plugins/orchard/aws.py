"""AWS clients for orchard's task code: one way to get them, through the run's Airflow connection.

Every client comes from the Amazon provider's `AwsBaseHook` with orchard's settings (`aws_conn_id`, `region`),
so credentials, endpoint (the local sandbox under `make up`) and retries are the connection's, as for the
provider's own operators. Import inside task callables, never at DAG parse time.
"""

from __future__ import annotations

from typing import Any


def hook(service: str) -> Any:
    """The provider's generic hook for `service` ("s3", "sagemaker", ...), on orchard's connection and region."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from orchard.settings import load_settings

    settings = load_settings()
    return AwsBaseHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region, client_type=service)


def client(service: str) -> Any:
    """A boto3 client for `service` on orchard's connection and region."""
    return hook(service).conn
