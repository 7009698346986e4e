"""Fixtures of the plugin tests."""

from __future__ import annotations

import pytest

from tests.local_aws.job_roles import create_test_job_roles


@pytest.fixture
def aws(aws):
    """A clean sandbox (tests/conftest.py) holding the job roles the tests' jobs and models run as."""
    create_test_job_roles()
    return aws
