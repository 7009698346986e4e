"""The Reports web app: a FastAPI app the Airflow API server mounts at ``/orchard-reports`` (a plugin's
``fastapi_apps``; https://airflow.apache.org/docs/apache-airflow/3.3.0/howto/custom-view-plugin.html).

- ``GET /``: the Reports page, recent runs of each pipeline (from each run's ``report.json``) with its
  first metrics and estimated cost;
- ``GET /runs/{dag_id}/{run_id}/``: that run's ``report.md`` rendered as HTML (every project's report for
  pose_training), with its figures;
- ``GET /runs/{dag_id}/{run_id}/[<project>/]figures/<name>.png``: one figure.

Reads go through the ``aws_default`` connection (orchard settings' ``aws_conn_id``) with the Amazon
provider's S3Hook, so this works against the sandbox under ``make up`` and on AWS unchanged. The browser
sends only ids; keys are computed under ``reports_bucket``/``reports_prefix`` (``orchard.ui.render``).
Plugin FastAPI apps are not behind Airflow's auth by themselves: every route depends on Airflow's own
``requires_access_dag`` / ``get_user`` (the ``_token`` cookie the UI's login sets, or a Bearer token), so a
user sees the runs of DAGs they may read and nothing else; no user, 401.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from orchard.ui import render
from orchard.ui.render import esc

log = logging.getLogger(__name__)

URL_PREFIX = "/orchard-reports"
RUNS_PER_DAG = 10
MAX_LISTED_KEYS = 5000

app = FastAPI(title="orchard reports", docs_url=None, redoc_url=None, openapi_url=None)


def _settings() -> Any:
    from orchard.settings import load_settings

    return load_settings()


def _s3(settings: Any) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=settings.aws_conn_id).get_conn()


def _can_read_dag_run(dag_id: str | None, user: Any) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


async def current_user(request: Request) -> Any:
    """Airflow's own ``get_user``: a Bearer token, else the ``_token`` cookie of the UI's login (401 without).

    Imported per request, not at module level: every Airflow component loads this plugin, and only the
    API server needs the API's security module (3 s of imports on 2 cores).
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


async def authorize_dag_run(request: Request, user: Any = Depends(current_user)) -> None:
    """Airflow's ``requires_access_dag("GET", RUN)`` for the path's dag_id: 403 unless the user may read
    its runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    requires_access_dag("GET", DagAccessEntity.RUN)(request, user)


def _q(run_id: str) -> str:
    return quote(run_id, safe="")


def _airflow_root(request: Request) -> str:
    root = request.scope.get("root_path", "")
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else ""


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 70rem; padding: 0 1rem;
       color: #1a202c; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: .75rem 0; }}
th, td {{ border: 1px solid #cbd5e0; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #edf2f7; }}
img {{ max-width: 100%; border: 1px solid #e2e8f0; }}
code {{ background: #edf2f7; padding: 0 .2rem; }}
.warn {{ background: #fffbeb; border-left: 4px solid #d69e2e; padding: .5rem .75rem; }}
.muted {{ color: #718096; }}
nav a {{ margin-right: 1rem; }}
</style></head>
<body>{body}</body></html>"""


def _s3_problem(settings: Any, error: ClientError) -> str:
    info = error.response.get("Error", {})
    return (
        f"Could not read the reports at s3://{settings.reports_bucket}/{settings.reports_prefix} through the "
        f"Airflow connection {settings.aws_conn_id!r}: "
        f"{info.get('Code', 'error')}: {info.get('Message', error)}. "
        "Its role needs s3:ListBucket (prefix reports) and s3:GetObject on that prefix, as the pipelines' "
        "Airflow policies in include/iam/ grant; check the bucket exists and the connection's credentials."
    )


def _s3_error(settings: Any, error: ClientError) -> HTMLResponse:
    log.warning("orchard reports: %s", _s3_problem(settings, error))
    return _error(502, _s3_problem(settings, error))


def _error(status: int, message: str) -> HTMLResponse:
    body = f'<h1>orchard reports</h1><p class="warn">{esc(message)}</p><p><a href="../../../">Reports</a></p>'
    return HTMLResponse(_page("orchard reports", body), status_code=status)


@app.get("/runs/{dag_id}/{run_id}/", response_class=HTMLResponse, dependencies=[Depends(authorize_dag_run)])
def run_report(dag_id: str, run_id: str, request: Request) -> HTMLResponse:
    settings = _settings()
    try:
        return _run_report(settings, dag_id, run_id, request)
    except ClientError as error:
        return _s3_error(settings, error)


def _run_report(settings: Any, dag_id: str, run_id: str, request: Request) -> HTMLResponse:
    try:
        folder = render.run_folder(settings.reports_prefix, dag_id, run_id)
    except render.NotAllowed as error:
        return _error(400, str(error))
    s3 = _s3(settings)
    listed = s3.list_objects_v2(Bucket=settings.reports_bucket, Prefix=folder, MaxKeys=1000)
    reports = render.report_keys(folder, (item["Key"] for item in listed.get("Contents", [])))
    airflow_run = f"{_airflow_root(request)}/dags/{quote(dag_id, safe='')}/runs/{_q(run_id)}"
    if not reports:
        return _error(
            404,
            f"No report for run {run_id} of {dag_id} (yet): its report task writes "
            f"s3://{settings.reports_bucket}/{folder}report.md when it runs.",
        )
    parts = [
        f'<nav><a href="../../../">All reports</a><a href="{airflow_run}" target="_top">Run in Airflow</a>'
        f'<span class="muted">s3://{esc(settings.reports_bucket)}/{esc(folder)}</span></nav>'
    ]
    for project, key in reports:
        body = s3.get_object(Bucket=settings.reports_bucket, Key=key)["Body"].read(render.MAX_REPORT_BYTES)
        if project:
            parts.append(f'<hr><p class="muted">Project <code>{esc(project)}</code></p>')
        parts.append(render.markdown_to_html(body.decode("utf-8", "replace"), figure_base=project))
    return HTMLResponse(_page(f"{dag_id} {run_id}", "\n".join(parts)))


@app.get("/runs/{dag_id}/{run_id}/{path:path}", dependencies=[Depends(authorize_dag_run)])
def run_figure(dag_id: str, run_id: str, path: str) -> Response:
    settings = _settings()
    try:
        key = render.figure_key(settings.reports_prefix, dag_id, run_id, path)
    except render.NotAllowed as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    s3 = _s3(settings)
    try:
        body = s3.get_object(Bucket=settings.reports_bucket, Key=key)["Body"].read(render.MAX_FIGURE_BYTES)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise HTTPException(status_code=404, detail=f"no figure {path} in this run's report") from None
        raise HTTPException(status_code=502, detail=_s3_problem(settings, error)) from None
    if not body.startswith(render.PNG_MAGIC):
        raise HTTPException(status_code=404, detail=f"{path} is not a PNG")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"}
    return Response(content=body, media_type="image/png", headers=headers)


@app.get("/", response_class=HTMLResponse)
def reports_page(request: Request, user: Any = Depends(current_user)) -> HTMLResponse:
    settings = _settings()
    try:
        return _reports_page(settings, request, user)
    except ClientError as error:
        return _s3_error(settings, error)


def _reports_page(settings: Any, request: Request, user: Any) -> HTMLResponse:
    s3 = _s3(settings)
    head = settings.reports_prefix.strip("/")
    prefix = f"{head}/" if head else ""
    folders = s3.list_objects_v2(Bucket=settings.reports_bucket, Prefix=prefix, Delimiter="/")
    sections = []
    for common in folders.get("CommonPrefixes", []):
        runs = _recent_reports(s3, settings.reports_bucket, common["Prefix"])
        runs = [run for run in runs if run["dag_id"] and _can_read_dag_run(run["dag_id"], user)]
        if runs:
            sections.append(_dag_section(runs, _airflow_root(request)))
    body = "<h1>Reports</h1>" + (
        "".join(sections)
        or f'<p class="muted">No run reports under s3://{esc(settings.reports_bucket)}/{esc(prefix)} yet.</p>'
    )
    return HTMLResponse(_page("orchard reports", body))


def _recent_reports(s3: Any, bucket: str, dag_prefix: str) -> list[dict[str, Any]]:
    """The newest RUNS_PER_DAG report.json under one DAG's folder (one per run folder or project)."""
    found, token = [], None
    while len(found) < MAX_LISTED_KEYS:
        kwargs = {"Bucket": bucket, "Prefix": dag_prefix, **({"ContinuationToken": token} if token else {})}
        page = s3.list_objects_v2(**kwargs)
        found += [item for item in page.get("Contents", []) if item["Key"].endswith("/report.json")]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    found.sort(key=lambda item: item["LastModified"], reverse=True)
    runs = []
    for item in found[:RUNS_PER_DAG]:
        try:
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read(render.MAX_REPORT_BYTES)
            data = json.loads(body)
            runs.append(render.report_summary(data))
        except (ValueError, KeyError) as error:
            log.warning("skipping unreadable report s3://%s/%s: %s", bucket, item["Key"], error)
    return sorted(runs, key=lambda run: run["generated_at"], reverse=True)  # LastModified is to the second


def _dag_section(runs: list[dict[str, Any]], airflow_root: str) -> str:
    dag_id = runs[0]["dag_id"]
    rows = []
    for run in runs:
        try:
            render.check_ids(run["dag_id"], run["run_id"])
        except render.NotAllowed:
            continue
        metrics = "<br>".join(
            f"{esc(k)}: <b>{esc(render.format_value(v))}</b>" for k, v in run["metrics"].items()
        )
        if run["more_metrics"]:
            metrics += f'<br><span class="muted">+{run["more_metrics"]} more in the report</span>'
        cost = "n/a" if run["cost_usd"] is None else f"${run['cost_usd']:,.2f}"
        ids = f"{quote(run['dag_id'], safe='')}/{_q(run['run_id'])}"
        report = f"runs/{ids}/"
        airflow = f"{airflow_root}/dags/{quote(run['dag_id'], safe='')}/runs/{_q(run['run_id'])}"
        rows.append(
            f'<tr><td><a href="{report}">{esc(run["run_id"])}</a><br>'
            f'<a class="muted" href="{airflow}" target="_top">in Airflow</a></td>'
            f"<td>{esc(run['generated_at'][:16].replace('T', ' '))}</td>"
            f"<td>{metrics}</td><td>{cost}</td></tr>"
        )
    return (
        f"<h2>{esc(runs[0]['title'] or dag_id)} <code>{esc(dag_id)}</code></h2><table>"
        "<tr><th>Run</th><th>Report generated (UTC)</th><th>Key metrics</th><th>Estimated cost</th></tr>"
        + "".join(rows)
        + "</table>"
    )
