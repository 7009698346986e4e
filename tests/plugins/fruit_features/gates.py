"""A client wrapper for the "at once" tests: the calls it gates answer only once all of them are in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Gated:
    """Wraps a boto3 client (or a fake): each call that `gates(name, kwargs)` selects waits at `barrier`
    before it runs, so calls made one after the other time out (BrokenBarrierError) and calls made at once
    pass. Several wrappers may share one barrier (calls to two services at once)."""

    def __init__(self, client: Any, barrier: threading.Barrier, gates: Callable[[str, dict], bool]):
        self.client, self.barrier, self.gates = client, barrier, gates

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            if self.gates(name, kwargs):
                self.barrier.wait()
            return attribute(*args, **kwargs)

        return call


def barrier(parties: int) -> threading.Barrier:
    return threading.Barrier(parties, timeout=5)
