"""Fixtures shared by the sandbox tests."""

from __future__ import annotations

import boto3
import pytest

from tests.local_aws.job_roles import create_test_job_roles
from tests.local_aws.training_jobs import upload_training_inputs


@pytest.fixture
def s3(aws):
    """A clean sandbox with a bucket holding the tiny training job's data and source."""
    client = boto3.client("s3")
    upload_training_inputs(client)
    return client


@pytest.fixture
def aws(aws):
    """A clean sandbox (tests/conftest.py) holding the job roles these tests name."""
    create_test_job_roles()
    return aws
