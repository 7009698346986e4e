"""`make test`'s parallel part (`pytest -n 2 --dist loadfile`) with the fault matrix's CI cells in it.

pytest-xdist's loadfile sends all of a file's tests to one worker as one unit, the files with the most tests
first (xdist/scheduler/loadscope.py `schedule`). Each matrix cell runs a whole DAG (20-170 s), so
test_matrix.py as one unit would run its cells one after another on one worker, and late. Here each cell is
a unit of its own and the cells go out first, in collection order (test_matrix.py puts the longest first):
both workers share them while the rest of the suite fills in behind. Every other file keeps loadfile's
grouping (its module fixtures set up once, on one worker)."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling

SPREAD_FIRST = frozenset({"tests/faults/test_matrix.py"})  # files whose tests go out one by one, first


def spread_first(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0] in SPREAD_FIRST


class CellsFirstScheduling(LoadFileScheduling):
    """loadfile, but each test of a SPREAD_FIRST file is its own scope, handed out before any other."""

    def _split_scope(self, nodeid: str) -> str:
        return nodeid if spread_first(nodeid) else super()._split_scope(nodeid)

    def _assign_work_unit(self, node) -> None:
        # The queue is ordered by test count (a cell's scope holds one test, so it would come last): move
        # the cells to its front, keeping their order, before each unit is taken.
        for scope in reversed([scope for scope in self.workqueue if spread_first(scope)]):
            self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: unknown when it is disabled (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` gets CellsFirstScheduling; every other mode xdist's own (None: the next hook)."""
    if config.getvalue("dist") != "loadfile":
        return None
    return CellsFirstScheduling(config, log)
