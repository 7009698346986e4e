"""What a task's code costs besides its answers: settings reads, and AWS calls made one by one or at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.plugins.reads import Reads, count_reads


@pytest.fixture
def reads(monkeypatch) -> Reads:
    """How often the code under test reads orchard's settings (orchard.aws reads them for a client made
    without conn_id) and opens an AWS session."""
    from orchard.auto_labeling import plan, report

    return count_reads(monkeypatch, plan, report)  # both imported load_settings by name


@dataclass
class InFlight:
    """The most calls of each AWS operation that were in flight at one time."""

    peak: Counter = field(default_factory=Counter)
    now: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def in_flight(monkeypatch) -> InFlight:
    """Every botocore call counted while it runs, and held 50 ms: calls made at once overlap, calls made
    one after the other never do."""
    from botocore.client import BaseClient

    counted = InFlight()
    make_api_call = BaseClient._make_api_call

    def counting(self, operation, params):
        with counted.lock:
            counted.now[operation] += 1
            counted.peak[operation] = max(counted.peak[operation], counted.now[operation])
        try:
            time.sleep(0.05)
            return make_api_call(self, operation, params)
        finally:
            with counted.lock:
                counted.now[operation] -= 1

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return counted
