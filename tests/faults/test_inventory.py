"""tests/faults/pipelines.py's inventory: what the fault harness calls a leftover."""

from __future__ import annotations

from tests.faults.pipelines import _batch_state


def test_a_job_asked_to_terminate_is_settling_until_its_container_stops():
    # TerminateJob's reason comes back as statusReason while the job is still STARTING or RUNNING
    assert "TERMINATING" in _batch_state("RUNNING", {"statusReason": "stopped by the teardown"})
    assert "TERMINATING" in _batch_state("STARTING", {"statusReason": "stopped by the teardown"})
    assert _batch_state("RUNNING", {}) == "RUNNING"  # nobody asked: a leftover
    # a queued job's reason is not a termination (e.g. CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY)
    assert _batch_state("RUNNABLE", {"statusReason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"}) == "RUNNABLE"
