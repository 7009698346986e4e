"""A person's approval at a pipeline's human gate, skippable by a run param for automated runs.

``OptionalApprovalOperator`` is Airflow's human-in-the-loop ``ApprovalOperator`` (standard provider,
``airflow.providers.standard.operators.hitl``) with two additions:

- ``required`` (templated, e.g. ``"{{ params.require_approval }}"``): when it renders false the task logs
  ``approval not required: <not_required_because>`` and returns an approved outcome at once, without
  waiting; the gated task runs as if a person had approved.
- ``timeout_hours`` (templated, e.g. ``"{{ params.approval_timeout_hours }}"``): how long the request waits.
  When it passes without an answer, Airflow takes the default, **Reject**: the gated task is skipped
  (nothing promoted, nothing deployed), the run goes on to its cleanup and report and ends green, its
  report and note saying "approval timed out".

Otherwise it waits like ApprovalOperator: the request (``subject``, ``body`` in Markdown, both templated and
possibly XCom arguments) appears in the UI's "Required Actions" and through the REST API
(``GET /api/v2/dags/~/dagRuns/~/hitlDetails``; answered with ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/
taskInstances/{task_id}/-1/hitlDetails`` ``{"chosen_options": ["Approve"]}``). On Airflow 3.3 the task
waits in the ``awaiting_input`` state, holding no worker slot; older versions defer to ``HITLTrigger``.
A Reject skips the tasks it gates: its direct downstream tasks that need it to succeed (trigger rule
``all_success``). A report or cleanup downstream of it with another trigger rule (``all_done``, a teardown)
still runs, and reads the outcome from its XCom. (ApprovalOperator would skip every direct downstream task
but teardowns, report included, and its skip ends the task before its return value reaches XCom.)

The task returns (XCom) an outcome the pipeline's report reads with ``outcome_note``::

    {"approved": bool, "required": bool, "timed_out": bool, "by": "<user name>" | None,
     "at": "<ISO 8601 time of the answer>" | None, "note": "..."}

``by`` and ``at`` say who answered and when (the registry's ApprovalDescription names them: aerial's
register_model marks the package Approved only when a person approved here).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import TriggerRule
from airflow.sdk.bases.xcom import BaseXCom

# The words a rendered `required` may be (Jinja renders a bool as "True" / "False").
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", "none", ""}


def rendered_flag(value: Any, name: str) -> bool:
    """A templated flag as a bool; anything but a clear yes / no is a DAG mistake, not a silent no."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is neither true nor false: template it from a boolean param")


def outcome_note(outcome: dict[str, Any] | None) -> str | None:
    """Why the gated step did not happen ("rejected by admin", "approval timed out ..."), or None when it
    was approved, not required, or the approval never ran (the run took another path)."""
    if not outcome or outcome.get("approved"):
        return None
    return outcome["note"]


class OptionalApprovalOperator(ApprovalOperator):
    """ApprovalOperator that a run can skip (``required`` false), with its wait from a param and Reject as the
    answer when nobody answers in time (see the module doc)."""

    template_fields = (*ApprovalOperator.template_fields, "required", "not_required_because", "timeout_hours")

    def __init__(
        self,
        *,
        required: bool | str = "{{ params.require_approval }}",
        not_required_because: str = "require_approval is off (an automated run)",
        timeout_hours: float | str = "{{ params.approval_timeout_hours }}",
        **kwargs: Any,
    ) -> None:
        if "defaults" in kwargs or "response_timeout" in kwargs:
            raise ValueError("OptionalApprovalOperator: the default is Reject and the wait is timeout_hours")
        super().__init__(defaults=self.REJECT, **kwargs)
        self.required = required
        self.not_required_because = not_required_because
        self.timeout_hours = timeout_hours

    def execute(self, context: Any) -> Any:
        if not rendered_flag(self.required, "required"):
            self.log.info("approval not required: %s", self.not_required_because)
            note = f"approval not required: {self.not_required_because}"
            return {
                "approved": True,
                "required": False,
                "timed_out": False,
                "by": None,
                "at": None,
                "note": note,
            }
        hours = float(self.timeout_hours)
        if hours <= 0:
            raise ValueError(f"timeout_hours={self.timeout_hours!r}: give a positive number of hours")
        self.response_timeout = timedelta(hours=hours)
        self.log.info(
            "waiting up to %g h for a person's answer to %r (no answer: %s)", hours, self.subject, self.REJECT
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        answer = HITLOperator.execute_complete(self, context=context, event=event)  # checks the answer
        outcome = self._outcome(answer, timed_out=bool(event.get("timedout")))
        self.hitl_summary_extra["approved"] = outcome["approved"]
        self.log.info("%s", outcome["note"])
        gated = self.gated_tasks(context["task"])
        if not outcome["approved"] and gated:
            # skip() ends the task at once (DownstreamTasksSkipped): the outcome goes to XCom first
            context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=outcome)
            self.log.info("not approved: skipping %s", ", ".join(t.task_id for t in gated))
            self.skip(ti=context["ti"], tasks=gated)
        return outcome

    @staticmethod
    def gated_tasks(task: Any) -> list[Any]:
        """The direct downstream tasks that need the approval to succeed (a Reject skips them)."""
        return [
            t
            for t in task.get_direct_relatives(upstream=False)
            if not t.is_teardown and t.trigger_rule == TriggerRule.ALL_SUCCESS
        ]

    def _outcome(self, answer: dict[str, Any], *, timed_out: bool) -> dict[str, Any]:
        approved = answer["chosen_options"] == [self.APPROVE]
        user = (answer.get("responded_by_user") or {}).get("name")
        at = answer["responded_at"].isoformat() if answer.get("responded_at") else None
        if timed_out:
            note = f"approval timed out after {float(self.timeout_hours):g} h (default: {self.REJECT})"
        else:
            note = f"{'approved' if approved else 'rejected'} by {user or 'an unknown user'}"
        return {
            "approved": approved,
            "required": True,
            "timed_out": timed_out,
            "by": user,
            "at": at,
            "note": note,
        }
