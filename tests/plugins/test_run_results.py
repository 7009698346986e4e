"""orchard.run_results.failure_causes: the root cause first, from the task instances' real states."""

from __future__ import annotations

from types import SimpleNamespace

from orchard.run_results import FailureCauses, failure_causes

EDGE_TASKS = ["validate_model", "ensure_signing_key", "prepare", "compile", "package", "deploy", "report"]


class FakeTI:
    """The Task SDK's RuntimeTaskInstance as failure_causes sees it: its task, DAG and the run's states."""

    def __init__(self, states: dict, task_ids=EDGE_TASKS, upstream=None):
        self.dag_id, self.run_id = "edge_deployment", "manual__1"
        self.states, self.asked = states, {}
        dag = SimpleNamespace(task_ids=list(task_ids))
        upstream = set(task_ids[:-1] if upstream is None else upstream)
        self.task = SimpleNamespace(dag=dag, get_flat_relative_ids=lambda **_: upstream)

    def get_task_states(self, dag_id, task_ids=None, run_ids=None, **_):
        self.asked = {"dag_id": dag_id, "task_ids": task_ids, "run_ids": run_ids}
        return {
            self.run_id: {
                k: v for k, v in self.states.items() if k.rsplit("_", 1)[0] in task_ids or k in task_ids
            }
        }


def test_the_failed_task_is_the_cause_and_the_tasks_it_stopped_are_not_run():
    ti = FakeTI(
        {
            "validate_model": "failed",
            "ensure_signing_key": "success",
            "prepare": "upstream_failed",
            "compile": "upstream_failed",
            "package": "upstream_failed",
            "deploy": "upstream_failed",
        }
    )

    causes = failure_causes(ti)

    assert causes.failed == ("validate_model",)
    assert causes.not_run == ("prepare", "compile", "package", "deploy")  # in the DAG's order
    assert str(causes) == "validate_model (not run, upstream failed: prepare, compile, package, deploy)"
    # one call for this run, for every task upstream of the caller (never the caller itself)
    assert ti.asked["run_ids"] == ["manual__1"] and "report" not in ti.asked["task_ids"]


def test_a_run_where_everything_succeeded_or_was_skipped_has_no_cause():
    ti = FakeTI({t: "success" for t in EDGE_TASKS[:-2]} | {"deploy": "skipped"})

    causes = failure_causes(ti)

    assert not causes and causes == FailureCauses()


def test_a_mapped_task_failed_when_any_instance_failed_and_only_the_asked_tasks_count():
    tasks = ["pretrain", "linear_probe", "evaluate", "publish_report"]
    ti = FakeTI(
        {"pretrain": "success", "linear_probe_0": "success", "linear_probe_1": "failed"},
        task_ids=tasks,
    )

    assert failure_causes(ti).failed == ("linear_probe",)
    assert failure_causes(ti, ["pretrain"]) == FailureCauses()


def test_a_cause_outside_the_judged_tasks_still_makes_the_run_failed():
    causes = failure_causes(FakeTI({"compile": "upstream_failed"}), ["compile", "package"])

    assert causes and causes.failed == () and causes.not_run == ("compile",)
    assert str(causes).startswith("a task outside those judged")
