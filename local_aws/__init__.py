"""orchard's local AWS sandbox: moto, extended so that jobs really run their code.

The DAGs never know about it: they speak AWS to whatever `AWS_ENDPOINT_URL` names.
"""

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
