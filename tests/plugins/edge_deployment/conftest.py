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


@pytest.fixture
def api_calls(monkeypatch):
    """Each AWS API call's (operation, parameters) as it ends (answered or refused), in that order, from every
    thread.
    `api_calls.meet(operations, parties)`: the first `parties` calls of those operations wait for each other,
    so they must be in flight at the same time (one after the other: BrokenBarrierError after 10 s)."""
    import threading

    from botocore.client import BaseClient

    meetings: list[tuple[set[str], threading.Barrier, list[int]]] = []
    lock = threading.Lock()

    class Calls(list):
        def meet(self, operations: set[str], parties: int) -> None:
            meetings.append((operations, threading.Barrier(parties, timeout=10), [parties]))

    calls = Calls()
    original = BaseClient._make_api_call

    def recording(self, operation, api_params):
        for operations, barrier, left in meetings:
            with lock:
                waits = operation in operations and left[0] > 0
                left[0] -= waits
            if waits:
                barrier.wait()
        try:
            return original(self, operation, api_params)
        finally:
            calls.append((operation, api_params))

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls
