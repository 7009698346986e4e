"""An optional delay on every API request, so the sandbox can stand in for a remote AWS region.

A local call returns in ~3 ms, so a client that calls one at a time looks as fast as one that fans out.
`ORCHARD_SANDBOX_LATENCY_MS=50` (a typical regional API round trip) delays each request by that much
before it is answered; requests are served by threads, so concurrent callers wait concurrently, as on
AWS. Read on every request: a benchmark may set it after the sandbox started. Unset or 0: no delay.
"""

from __future__ import annotations

import os
import time
from typing import Any

from moto.server import DomainDispatcherApplication

LATENCY_VARIABLE = "ORCHARD_SANDBOX_LATENCY_MS"


def latency_s() -> float:
    raw = os.environ.get(LATENCY_VARIABLE, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{LATENCY_VARIABLE}={raw!r} is not a number of milliseconds (e.g. 50)") from None
    if value < 0:
        raise ValueError(f"{LATENCY_VARIABLE} must be ≥ 0 ms, not {value}")
    return value / 1000


def install() -> None:
    latency_s()  # a bad value stops the sandbox at start, with the fix, rather than failing every request
    dispatch = DomainDispatcherApplication.__call__

    def delayed(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        delay = latency_s()
        if delay and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(delay)
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = delayed
