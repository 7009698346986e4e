"""Watch an AWS resource move through its states, as a deferrable trigger would."""

from __future__ import annotations

import time
from collections.abc import Callable


def watch_states(read_state: Callable[[], str], terminal: set[str], timeout_s: float = 120) -> list[str]:
    """Poll until a terminal state; return every distinct state seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state()
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in terminal:
            return seen
        time.sleep(0.05)
    raise TimeoutError(f"still {seen[-1] if seen else 'unknown'} after {timeout_s} s (seen: {seen})")
