"""orchard's local AWS sandbox: moto, extended so that jobs really run their code.

The DAGs never know about it: they speak AWS to whatever `AWS_ENDPOINT_URL` names.
"""

import json

DEFAULT_PORT = 4566
DEFAULT_REGION = "us-east-1"

# Credentials and region every client of the sandbox uses; moto accepts any values.
CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": DEFAULT_REGION,
}


def client_env(endpoint_url: str) -> dict[str, str]:
    """Environment variables that point boto3 / aiobotocore at the sandbox."""
    return {**CLIENT_ENV, "AWS_ENDPOINT_URL": endpoint_url}


def sandbox_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION):
    """A boto3 client of the sandbox at `endpoint_url`, whatever this process's environment says."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=CLIENT_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def aws_connection(endpoint_url: str, region: str = DEFAULT_REGION, role_arn: str | None = None) -> str:
    """`aws_default` as AIRFLOW_CONN_AWS_DEFAULT JSON: the sandbox, and the botocore retries every
    orchard connection sets. Credentials come from CLIENT_ENV in the environment; with `role_arn`,
    AwsBaseHook assumes that role with them (the connection extra `role_arn`), so every call Airflow makes
    is authorized against the role's policies (local_aws/iam.py)."""
    extra = {
        "endpoint_url": endpoint_url,
        "region_name": region,
        "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10}},
    }
    if role_arn:
        extra["role_arn"] = role_arn
    return json.dumps({"conn_type": "aws", "extra": extra})
