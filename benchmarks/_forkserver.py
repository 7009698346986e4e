"""A scheduler's forkserver as the forkserver benchmarks stand it in: its children, one at a time, and its size."""

from __future__ import annotations

import multiprocessing
from pathlib import Path


def forked_reports(target, children: int, *args) -> list[dict]:
    """Run `target(results, *args)` in `children` processes forked one after the other from the forkserver
    (the start method and preload already set); each puts one report dict on `results`."""
    results = multiprocessing.Queue()
    reports = []
    for _ in range(children):
        child = multiprocessing.Process(target=target, args=(results, *args))
        child.start()
        reports.append(results.get(timeout=300))
        child.join()
    return reports


def forkserver_rss_kib() -> int:
    from multiprocessing import forkserver

    pid = forkserver._forkserver._forkserver_pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")
