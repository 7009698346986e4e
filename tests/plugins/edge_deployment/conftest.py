"""Fixtures of edge_deployment's plugin tests."""

from __future__ import annotations

import boto3
import pytest


@pytest.fixture
def s3(aws):
    """The sandbox's S3 with the buckets validate_model reads: the data and artifacts buckets."""
    client = boto3.client("s3")
    for bucket in ("edge", "orchard-data", "orchard-artifacts"):
        client.create_bucket(Bucket=bucket)
    return client
