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
