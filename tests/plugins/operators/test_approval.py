"""orchard.operators.approval: a person's approval, skippable by a param, Reject when nobody answers.

The operator is run as the task runner runs it: templates rendered from the run's params, then ``execute``
(which parks the task awaiting input on Airflow 3.3), then ``execute_complete`` with the event the REST
API's answer or the scheduler's timeout sweep builds (``HITLDetail.as_resume_event_payload``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from airflow.models.hitl import HITLDetail
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import DownstreamTasksSkipped, TaskAwaitingInput

from orchard.operators.approval import OptionalApprovalOperator, outcome_note, rendered_flag

HITL = "airflow.providers.standard.operators.hitl"
ANSWERED_AT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class FakeTI:
    id = "0198e8f3-0000-7000-8000-000000000001"
    map_index = -1

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def gate_dag():
    """approve >> register (all_success: gated), approve >> report (all_done), approve >> cleanup
    (a teardown): only register is what a Reject skips."""
    with DAG("approval_test", schedule=None) as dag:
        approve = OptionalApprovalOperator(
            task_id="approve", subject="Promote {{ params.model }}?", body="mAP **0.71** vs 0.69"
        )

        @task
        def register():
            return "registered"

        @task(trigger_rule="all_done")
        def report():
            return "reported"

        @task
        def cleanup():
            return []

        approve >> [register(), report(), cleanup().as_teardown()]
    return dag, approve


def rendered(operator, **params):
    context = {"params": {"require_approval": True, "approval_timeout_hours": 24, "model": "vit", **params}}
    operator.render_template_fields(context)
    return {**context, "task": operator, "ti": FakeTI(), "task_instance": FakeTI()}


def resume_event(chosen: str, user: str | None, *, timed_out: bool = False) -> dict:
    """The event Airflow resumes the task with: built by the same model method the REST API's PATCH and the
    scheduler's timeout sweep use."""
    detail = HITLDetail(
        options=["Approve", "Reject"],
        subject="s",
        defaults=["Reject"],
        chosen_options=[chosen],
        params_input={},
        responded_at=ANSWERED_AT,
        responded_by={"id": user, "name": user} if user else None,
    )
    return detail.as_resume_event_payload(timedout=timed_out)


def test_not_required_returns_approved_without_waiting(capfd):
    _, approve = gate_dag()
    context = rendered(approve, require_approval=False)
    with mock.patch(f"{HITL}.upsert_hitl_detail") as upsert:
        outcome = approve.execute(context)
    upsert.assert_not_called()  # no request in the UI
    assert outcome == {
        "approved": True,
        "required": False,
        "timed_out": False,
        "by": None,
        "at": None,
        "note": "approval not required: require_approval is off (an automated run)",
    }
    assert "approval not required: require_approval is off" in capfd.readouterr().out  # the task log
    assert outcome_note(outcome) is None  # the gated step goes ahead


def test_required_writes_the_request_and_waits_for_input_with_the_param_timeout():
    _, approve = gate_dag()
    context = rendered(approve, approval_timeout_hours=6)
    with mock.patch(f"{HITL}.upsert_hitl_detail") as upsert, pytest.raises(TaskAwaitingInput) as waiting:
        approve.execute(context)
    request = upsert.call_args.kwargs
    assert request["options"] == ["Approve", "Reject"] and request["multiple"] is False
    assert request["defaults"] == ["Reject"]  # what a timeout takes
    assert request["subject"] == "Promote vit?" and request["body"] == "mAP **0.71** vs 0.69"
    assert waiting.value.method_name == "execute_complete"
    assert waiting.value.timeout == timedelta(hours=6)


def test_timeout_takes_reject_skips_only_the_gated_task_and_keeps_the_outcome():
    _, approve = gate_dag()
    context = rendered(approve, approval_timeout_hours=2)
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        approve.execute_complete(context, resume_event("Reject", None, timed_out=True))
    assert skipped.value.tasks == ["register"]  # the report (all_done) and the cleanup (teardown) run
    outcome = context["ti"].pushed["return_value"]  # in XCom before the skip ended the task
    assert outcome == {
        "approved": False,
        "required": True,
        "timed_out": True,
        "by": None,
        "at": "2026-12-07T03:00:00+00:00",  # when the sweep took the default
        "note": "approval timed out after 2 h (default: Reject)",
    }
    assert outcome_note(outcome) == "approval timed out after 2 h (default: Reject)"


def test_reject_names_the_person():
    _, approve = gate_dag()
    context = rendered(approve)
    with pytest.raises(DownstreamTasksSkipped):
        approve.execute_complete(context, resume_event("Reject", "alice"))
    outcome = context["ti"].pushed["return_value"]
    assert outcome["approved"] is False and outcome["by"] == "alice"
    assert outcome_note(outcome) == "rejected by alice"


def test_approve_skips_nothing():
    _, approve = gate_dag()
    context = rendered(approve)
    outcome = approve.execute_complete(context, resume_event("Approve", "alice"))
    assert outcome == {
        "approved": True,
        "required": True,
        "timed_out": False,
        "by": "alice",
        "at": "2026-12-07T03:00:00+00:00",  # who and when: the registry's ApprovalDescription names both
        "note": "approved by alice",
    }
    assert context["ti"].pushed == {}  # returned normally: the task runner pushes it


def test_an_answer_that_is_no_option_fails():
    _, approve = gate_dag()
    with pytest.raises(ValueError, match="not in"):
        approve.execute_complete(rendered(approve), resume_event("Maybe", "alice"))


@pytest.mark.parametrize(("value", "expected"), [("True", True), ("False", False), (True, True), ("", False)])
def test_rendered_flag(value, expected):
    assert rendered_flag(value, "required") is expected


def test_rendered_flag_refuses_what_is_not_a_boolean():
    with pytest.raises(ValueError, match="required='sometimes' is neither true nor false"):
        rendered_flag("sometimes", "required")


def test_the_default_and_the_wait_are_not_for_the_dag_to_change():
    with pytest.raises(ValueError, match="the default is Reject"):
        OptionalApprovalOperator(task_id="a", subject="s", defaults="Approve")
    with pytest.raises(ValueError, match="timeout_hours"):
        OptionalApprovalOperator(task_id="a", subject="s", response_timeout=timedelta(hours=1))


def test_a_timeout_that_is_not_positive_is_refused():
    _, approve = gate_dag()
    context = rendered(approve, approval_timeout_hours=0)
    with mock.patch(f"{HITL}.upsert_hitl_detail"), pytest.raises(ValueError, match="positive"):
        approve.execute(context)


# ---- the Airflow 3.3 race behind a quick answer (docs/architecture.md, "Human approvals") ----------------


def _scheduler_sees_the_parked_workers_exit(resumed_state: str) -> mock.MagicMock:
    """Airflow's scheduler handling the executor's SUCCESS for the worker that parked the approval task,
    drained only after a person's answer has resumed the same try (the PATCH sets it SCHEDULED; the
    scheduler may have QUEUED it, a worker may be RUNNING execute_complete). Returns the task instance."""
    from airflow.jobs import scheduler_job_runner as scheduler
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.utils.state import TaskInstanceState

    key = TaskInstanceKey("aerial_pretraining", "approve_promotion", "manual__1", try_number=1)
    ti = mock.MagicMock(key=key, try_number=1, state=TaskInstanceState(resumed_state), queued_by_job_id=7)
    ti.next_method = "execute_complete"  # resumed from awaiting_input: the answer is its event
    ti.task = mock.MagicMock(has_on_retry_callback=False, has_on_failure_callback=False, email=None)
    executor = mock.MagicMock()
    executor.get_event_buffer.return_value = {key: (TaskInstanceState.SUCCESS, None)}
    executor.has_task.return_value = False  # the exit removed the key the resumed workload shares
    session = mock.MagicMock()
    session.scalars.return_value = iter([ti])
    dag_bag = mock.MagicMock()
    dag_bag.get_dag_for_run.return_value.get_task.return_value = ti.task
    with (
        mock.patch.object(scheduler, "with_row_locks", lambda query, **_: query),
        mock.patch.object(scheduler, "Log"),
    ):
        scheduler.SchedulerJobRunner.process_executor_events(executor, 7, dag_bag, session)
    return ti


@pytest.mark.parametrize("resumed_state", ["queued", "running"])
def test_airflow_still_fails_an_approval_resumed_before_the_parked_worker_exit_was_seen(resumed_state):
    """A canary, not orchard's behaviour: Airflow 3.3.2 takes the parked worker's exit for an external kill
    of the resumed try when the answer came first (apache/airflow#67287, fixed for QUEUED by #68741, not in
    3.3.2; #72716 for RUNNING, open). The try goes up_for_retry and asks again: a person answering within
    seconds of the park meets it, which is why tests/ui waits before its PATCH. When this fails, the
    installed Airflow ignores the stale event: drop that wait and this test."""
    ti = _scheduler_sees_the_parked_workers_exit(resumed_state)
    ti.handle_failure.assert_called_once()
    assert "finished with state success" in ti.handle_failure.call_args.kwargs["error"]


def test_airflow_already_ignores_the_stale_exit_while_the_resumed_try_is_scheduled():
    """The one variant Airflow 3.3.2 guards (apache/airflow#66374, #66431): SCHEDULED with next_method set."""
    ti = _scheduler_sees_the_parked_workers_exit("scheduled")
    ti.handle_failure.assert_not_called()
