"""Results where people look: a run's key metrics and report URI on its Asset event and its note, and a
visible warning for results that need attention, without failing the run.

A report task calls, after publishing its report::

    from orchard.run_results import announce
    announce(ti, uri, {"test mAP": 0.71}, attention=[] if promoted else ["not promoted: ..."],
             outlet_events=outlet_events, asset=BACKBONE_ASSET)

``announce``
- merges ``report_uri``, the metrics, the estimated cost and the attention items into the Asset event's
  ``extra`` (what the Assets view and Asset-triggered DAGs see);
- pushes them as the XCom ``run_summary``;
- leaves the task's and the run's state alone: results that need attention never fail a run;
- logs each attention item as a WARNING line (the task log colours it);
- returns the summary.

Task code cannot write a run's note in Airflow 3.3 (the Task SDK has no call for it and tasks have no
metadata-DB access), so the plugin's listener ``orchard.ui.notes.RunSummaryListener`` does it in the
scheduler when the run
ends (``on_dag_run_success`` / ``on_dag_run_failed``, run in the scheduler with its DB session,
https://airflow.apache.org/docs/apache-airflow/3.3.0/howto/listener-plugin.html): it
reads the run's ``run_summary`` XComs and sets the run's note, and the report task instance's note, to the
summary, starting with ``⚠ Needs attention: ...`` when there is something to look at. A note a person
wrote is never replaced. The run's state stays what its tasks made it.

``failure_causes(ti)`` is the root cause first for a report or a teardown that runs whatever failed: the
tasks before it that *failed*, then those not run because of them (their real states, not missing XComs).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SUMMARY_KEY = "run_summary"
ATTENTION = "⚠ Needs attention"
NOTE_HEADER = "orchard run summary"
NOTE_MAX_CHARS = 1000  # the REST API's DAGRunPatchBody.note maxLength
MAX_METRICS = 8


def announce(
    ti: Any,
    report_uri: str,
    metrics: Mapping[str, Any] | None = None,
    *,
    attention: Iterable[str] = (),
    cost_usd: float | None = None,
    outlet_events: Any = None,
    asset: Any = None,
) -> dict[str, Any]:
    """Publish the run's summary (see the module doc). ``metrics=None`` reads them from report.json."""
    if not isinstance(report_uri, str) or not report_uri.startswith("s3://"):
        raise ValueError(f"report_uri must be the s3:// URI Report.publish returned, got {report_uri!r}")
    if metrics is None:  # a task that has the report in hand passes its metrics: no read-back (and no IAM)
        report = read_report_json(report_uri)
        metrics = report.get("metrics") or {}
        cost_usd = report.get("cost_usd") if cost_usd is None else cost_usd
    items = [str(item) for item in attention if item]
    summary = {
        "report_uri": report_uri,
        "metrics": _json_safe(dict(list(dict(metrics).items())[:MAX_METRICS])),
        "cost_usd": cost_usd,
        "attention": items,
    }
    for item in items:
        log.warning("%s: %s (report: %s)", ATTENTION, item, report_uri)
    if outlet_events is not None and asset is not None:
        event = outlet_events[asset]
        event.extra = {**dict(event.extra or {}), **summary}
    ti.xcom_push(key=SUMMARY_KEY, value=summary)
    return summary


def drift_attention(monitor: Mapping[str, Any] | None) -> list[str]:
    """Attention items for devices whose input or prediction drift is over its threshold, from the
    edge monitor's result (``{"devices": {name: {"input_psi", "input_drift", ...}}}``)."""
    items = []
    for device, stats in sorted(((monitor or {}).get("devices") or {}).items()):
        drifted = [kind for kind in ("input", "prediction") if stats.get(f"{kind}_drift")]
        if drifted:
            psi = ", ".join(f"{kind} PSI {float(stats[f'{kind}_psi']):.3g}" for kind in drifted)
            items.append(f"{device}: drift over threshold ({psi})")
    return items


@dataclass(frozen=True)
class FailureCauses:
    """Why a run failed, from its task instances' real states: the tasks that ran and failed (the causes),
    and those that never ran because of them (Airflow's ``upstream_failed``). Falsy when nothing failed."""

    failed: tuple[str, ...] = ()
    not_run: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.failed or self.not_run)

    def __str__(self) -> str:
        causes = ", ".join(self.failed) or "a task outside those judged"
        return causes + (f" (not run, upstream failed: {', '.join(self.not_run)})" if self.not_run else "")


def failure_causes(ti: Any, task_ids: Iterable[str] | None = None) -> FailureCauses:
    """The tasks of this run that failed, then those not run because of them, in the DAG's task order.

    ``task_ids`` defaults to every task upstream of ``ti``'s own (a report or a teardown judges what ran
    before it). States come from the Task SDK (``RuntimeTaskInstance.get_task_states``: the execution API's
    task-instance states of this run; a mapped task's instances are keyed ``<task_id>_<map_index>``, and the
    task counts as failed if any instance failed). A task without an XCom is not a cause: it may have been
    skipped, or never run because an upstream task failed.
    """
    order = list(ti.task.dag.task_ids)
    wanted = sorted(
        set(task_ids) if task_ids is not None else ti.task.get_flat_relative_ids(upstream=True),
        key=lambda task_id: order.index(task_id) if task_id in order else len(order),
    )
    found = ti.get_task_states(dag_id=ti.dag_id, task_ids=wanted, run_ids=[ti.run_id]).get(ti.run_id) or {}
    states: dict[str, set[str]] = {}
    for key, state in found.items():
        head, _, index = key.rpartition("_")
        task_id = key if key in wanted or not index.isdigit() else head
        states.setdefault(task_id, set()).add(str(state))
    return FailureCauses(
        failed=tuple(t for t in wanted if "failed" in states.get(t, ())),
        not_run=tuple(
            t for t in wanted if "upstream_failed" in states.get(t, ()) and "failed" not in states.get(t, ())
        ),
    )


def read_report_json(report_uri: str) -> dict[str, Any]:
    """report.json next to ``report_uri`` (report.md), through the orchard AWS connection."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from orchard.settings import load_settings

    bucket, _, key = report_uri[len("s3://") :].partition("/")
    hook = S3Hook(aws_conn_id=load_settings().aws_conn_id)
    return json.loads(hook.read_key(key.rsplit("/", 1)[0] + "/report.json", bucket))


def note_text(summaries: Sequence[Mapping[str, Any]]) -> str:
    """The run note for one or more summaries (pose_training maps one report per project)."""
    attention = [item for summary in summaries for item in summary.get("attention") or []]
    lines = [f"{ATTENTION}: " + "; ".join(attention)] if attention else []
    lines.append(f"{NOTE_HEADER}" + ("" if attention else " (nothing needs attention)") + ":")
    for summary in summaries:
        metrics = ", ".join(f"{k} = {_short(v)}" for k, v in (summary.get("metrics") or {}).items())
        cost = summary.get("cost_usd")
        lines.append(f"- report: {summary.get('report_uri')}")
        if metrics:
            lines.append(f"  {metrics}")
        if cost is not None:
            lines.append(f"  estimated cost: ${float(cost):,.2f}")
    text = "\n".join(lines)
    return text if len(text) <= NOTE_MAX_CHARS else text[: NOTE_MAX_CHARS - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
