"""Turn the sandbox's fault injection on and off for a test, through its admin route (local_aws/faults.py)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

ADMIN_PATH = "/_orchard/faults"


def _call(url: str, method: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(config).encode() if config is not None else None
    request = urllib.request.Request(
        f"{url}{ADMIN_PATH}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise ValueError(json.loads(error.read()).get("error", str(error))) from None


def set_faults(url: str, config: dict[str, Any]) -> dict[str, Any]:
    return _call(url, "PUT", config)


def fault_report(url: str) -> dict[str, Any]:
    return _call(url, "GET")


def clear_faults(url: str) -> dict[str, Any]:
    return _call(url, "DELETE")


@contextlib.contextmanager
def faults(url: str, config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Faults on inside the block; yields a dict that holds the injection report once the block ends."""
    set_faults(url, config)
    result: dict[str, Any] = {}
    try:
        yield result
    finally:
        result.update(fault_report(url))
        clear_faults(url)
