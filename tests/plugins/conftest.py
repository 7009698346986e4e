"""Fixtures of the plugin tests."""

from __future__ import annotations

import pytest

from tests.local_aws.job_roles import create_test_job_roles


@pytest.fixture
def aws(aws):
    """A clean sandbox (tests/conftest.py) holding the job roles the tests' jobs and models run as."""
    create_test_job_roles()
    return aws


@pytest.fixture
def sessions_built(monkeypatch) -> list[str]:
    """The client types of the provider hooks that built a boto3 session (each one, with the connection's
    role_arn, an AssumeRole) while the test runs."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    built: list[str] = []
    original = AwsGenericHook.get_session

    def counting(self, *args, **kwargs):
        built.append(self.client_type or self.resource_type)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AwsGenericHook, "get_session", counting)
    return built


def create_role_the_account_assumes(name: str, *, allow_everything: bool = False) -> str:
    """An IAM role in the sandbox that the account's own credentials may assume (a connection's `role_arn`,
    as the local stack's); `allow_everything` gives it an inline policy allowing every action."""
    import json

    import boto3

    from local_aws.iam_setup import ACCOUNT

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = boto3.client("iam")
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if allow_everything:
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=json.dumps(everything))
    return role_arn
