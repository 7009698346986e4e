"""What the Reports UI shows, as pure functions: which S3 keys a request may read, and report.md as HTML.

The browser never names an S3 key. It names a DAG id and a run id; the key is computed here the way
``Report.publish`` wrote it (``<reports_prefix><dag>/<run part>-<hash>/``, ``orchard.naming``'s s3_prefix)
so every key this UI reads is under the reports prefix by construction. Ids are checked against the
patterns Airflow itself accepts (``[scheduler] allowed_run_id_pattern``'s default, Airflow's key pattern
for DAG ids); a figure path must be ``[<project>/]figures/<name>.png`` with no ``..`` and no leading ``/``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from orchard import naming

# Airflow's DAG id pattern (airflow.utils.helpers.KEY_REGEX) and the default allowed_run_id_pattern.
DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
RUN_ID = re.compile(r"[A-Za-z0-9_.~:+-]{1,250}")
# Report.publish writes figures/<stem>.png (reports._figure_stem); pose_training nests one project folder.
FIGURE_PATH = re.compile(r"(?:[a-z0-9][a-z0-9._-]{0,199}/)?figures/[a-z0-9][a-z0-9._-]{0,199}\.png")
PROJECT = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_REPORT_BYTES = 2 * 1024 * 1024
MAX_FIGURE_BYTES = 10 * 1024 * 1024


class NotAllowed(ValueError):
    """A request for something this UI does not serve (bad id, a key outside the reports prefix)."""


def check_ids(dag_id: str, run_id: str) -> None:
    if not DAG_ID.fullmatch(dag_id or ""):
        raise NotAllowed(f"invalid DAG id {dag_id!r}: use letters, digits, '_', '.', '-' (at most 250)")
    if not RUN_ID.fullmatch(run_id or ""):
        raise NotAllowed(
            f"invalid run id {run_id!r}: Airflow run ids use letters, digits and '_.~:+-' (at most 250)"
        )


def run_folder(reports_prefix: str, dag_id: str, run_id: str) -> str:
    """The S3 key prefix where this run's report was published (ends with '/')."""
    check_ids(dag_id, run_id)
    head = reports_prefix.strip("/")
    return (f"{head}/" if head else "") + naming.resource_name("s3_prefix", dag_id, run_id)


def figure_key(reports_prefix: str, dag_id: str, run_id: str, path: str) -> str:
    """The key of one figure of a run's report; anything but ``[<project>/]figures/<name>.png`` is refused."""
    if not FIGURE_PATH.fullmatch(path or "") or ".." in path:
        raise NotAllowed(f"{path!r} is not a report figure: expected [<project>/]figures/<name>.png")
    return run_folder(reports_prefix, dag_id, run_id) + path


def report_keys(folder: str, keys: Iterable[str]) -> list[tuple[str, str]]:
    """(project, key) of each report.md directly in ``folder`` ('' project) or one project folder down."""
    found = []
    for key in keys:
        rest = key[len(folder) :] if key.startswith(folder) else None
        if rest == "report.md":
            found.append(("", key))
        elif rest and rest.endswith("/report.md") and PROJECT.fullmatch(rest[: -len("/report.md")]):
            found.append((rest[: -len("/report.md")], key))
    return sorted(found)


def markdown_to_html(text: str, figure_base: str = "") -> str:
    """report.md as HTML: CommonMark + tables, raw HTML escaped (only the ``<br>`` reports use in table
    cells is kept), links limited to markdown-it's safe schemes, relative image sources re-based on
    ``figure_base`` (the report's project folder, for pose_training's per-project reports)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                if figure_base and FIGURE_PATH.fullmatch(src):
                    child.attrSet("src", f"{figure_base}/{src}")
                elif not FIGURE_PATH.fullmatch(src):
                    child.attrSet("src", "")  # nothing but the report's own figures is fetched
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if href.startswith(("http://", "https://")):
                    child.attrSet("target", "_blank")
                    child.attrSet("rel", "noopener noreferrer")
    rendered = md.renderer.render(tokens, md.options, {})
    return rendered.replace("&lt;br&gt;", "<br>")


def report_summary(report_json: Mapping[str, Any], max_metrics: int = 6) -> dict[str, Any]:
    """What the Reports page lists for one run: title, time, the first metrics, cost, attention items."""
    metrics = report_json.get("metrics") or {}
    shown = {name: value for name, value in list(metrics.items())[:max_metrics]}
    return {
        "title": str(report_json.get("title", "")),
        "dag_id": str(report_json.get("dag_id", "")),
        "run_id": str(report_json.get("run_id", "")),
        "generated_at": str(report_json.get("generated_at", "")),
        "metrics": shown,
        "more_metrics": max(0, len(metrics) - len(shown)),
        "cost_usd": report_json.get("cost_usd"),
    }


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:80]
    return str(value)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)
