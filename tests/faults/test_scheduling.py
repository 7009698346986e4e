"""`make test`'s scheduler (tests/faults/scheduling.py), driven as pytest-xdist's controller drives it
(add_node, add_node_collection, schedule, mark_test_complete), with stand-ins for the two workers."""

from __future__ import annotations

from types import SimpleNamespace

from tests.faults.scheduling import CellsFirstScheduling, pytest_xdist_make_scheduler

MATRIX = "tests/faults/test_matrix.py"
CELLS = [
    f"{MATRIX}::test_cell[pose_training-{task}-{when}]" for task in "abc" for when in ("before", "after")
]
OTHERS = [f"tests/plugins/test_big.py::test_{i}" for i in range(5)] + [
    f"tests/local_aws/test_small.py::test_{i}" for i in range(2)
]


class Worker:
    """What the scheduler sees of a worker: the test indices sent to it, in order."""

    def __init__(self, name: str):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices):
        self.sent += indices

    def shutdown(self):
        self.shutting_down = True


def _config(dist="loadfile"):
    options = {"tx": ["2*popen"], "dist": dist}
    return SimpleNamespace(getvalue=options.__getitem__, option=SimpleNamespace(loadscopereorder=True))


def _started(collection):
    scheduler = CellsFirstScheduling(_config())
    workers = [Worker("gw0"), Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
    for worker in workers:
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    return scheduler, workers


def test_each_matrix_cell_is_a_scope_of_its_own_and_every_other_file_one_scope():
    scheduler = CellsFirstScheduling(_config())

    assert [scheduler._split_scope(c) for c in CELLS] == CELLS
    assert {scheduler._split_scope(t) for t in OTHERS} == {
        "tests/plugins/test_big.py",
        "tests/local_aws/test_small.py",
    }


def test_the_cells_go_out_first_in_collection_order_over_both_workers():
    collection = OTHERS + CELLS  # collected last, as test_matrix.py sorts after tests/local_aws, tests/e2e

    scheduler, (gw0, gw1) = _started(collection)

    # each worker gets its first two units (xdist's start): four cells, alternating, in collection order
    assert [collection[i] for i in gw0.sent] == [CELLS[0], CELLS[2]]
    assert [collection[i] for i in gw1.sent] == [CELLS[1], CELLS[3]]
    # a finished cell brings the next unit: the remaining cells, then the files, each file whole
    scheduler.mark_test_complete(gw1, gw1.sent[0])
    scheduler.mark_test_complete(gw0, gw0.sent[0])
    scheduler.mark_test_complete(gw0, gw0.sent[1])
    assert [collection[i] for i in gw1.sent[2:]] == [CELLS[4]]
    assert [collection[i] for i in gw0.sent[2:]] == [CELLS[5], *OTHERS[:5]]


def test_without_cells_it_schedules_as_loadfile():
    scheduler, (gw0, gw1) = _started(OTHERS)

    assert [OTHERS[i] for i in gw0.sent] == OTHERS[:5]  # the bigger file first, whole
    assert [OTHERS[i] for i in gw1.sent] == OTHERS[5:]


def test_the_hook_replaces_only_loadfile():
    assert isinstance(pytest_xdist_make_scheduler(_config("loadfile"), None), CellsFirstScheduling)
    assert pytest_xdist_make_scheduler(_config("worksteal"), None) is None
    assert pytest_xdist_make_scheduler(_config("load"), None) is None


def test_the_matrix_collects_a_pipelines_tasks_downstream_first():
    """test_matrix.py's order, which CellsFirstScheduling keeps: no task's cells before a task downstream
    of it (a cell runs everything upstream of its fault, so the downstream cells are the long ones)."""
    from tests.dag_files import load_dag
    from tests.faults.pipelines import PIPELINES
    from tests.faults.test_matrix import _task_ids

    pipeline = PIPELINES["pose_training"]
    order = _task_ids(pipeline)
    dag = load_dag(pipeline.dag_file)

    for i, task_id in enumerate(order):
        assert not set(order[i + 1 :]) & dag.get_task(task_id).get_flat_relative_ids(upstream=False)
    assert order[:2] == ["stop_training", "project.check_export"] and order[-1] == "ensure_event_path"
