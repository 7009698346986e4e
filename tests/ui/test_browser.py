"""The Airflow UI in a real browser: headless Chromium (Debian's `chromium`, driven over the DevTools
protocol, tests/ui/chromium.py) against the local stack (`local_aws.stack.Stack`: sandbox, scheduler,
dag-processor, triggerer, api-server, as `make up` runs them, on free ports and a fresh DB).

It logs in through the SimpleAuthManager form with the password from the stack's password file, opens the
Reports page and a rendered run report (orchard_ui plugin, through the `aws_default` connection to the
sandbox), and submits the trigger form of each of the five DAGs with its defaults (with "unpause on trigger"
off, so the runs are created and stay queued: nothing runs). Last, one aerial_pretraining run with
require_approval on waits for a person: its Required Actions page is screenshotted and it is approved through
the REST API (hitlDetails), a few minutes of small demo data. Screenshots are kept as test artifacts in
`.airflow/ui-screenshots/` (or `$ORCHARD_UI_SCREENSHOTS`).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.ui.chromium import Chromium, chromium_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("ORCHARD_UI_SCREENSHOTS", REPO_ROOT / ".airflow" / "ui-screenshots"))
DAG_IDS = ["aerial_pretraining", "auto_labeling", "edge_deployment", "fruit_features", "pose_training"]
RUN_ID = "manual__2026-12-06T09:30:00+00:00"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(chromium_binary() is None, reason="needs Debian's chromium (.ci/run installs it)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import local_aws
    from local_aws.iam_setup import DEMO_AIRFLOW_ROLE, create_pipeline_roles, settings_buckets
    from local_aws.stack import Stack, bucket_names, load_settings, pick_port
    from local_aws.stack.processes import _environ

    home = tmp_path_factory.mktemp("airflow-home")
    running = Stack(home=home, sandbox_port=pick_port(0), api_port=pick_port(0), fresh_db=True)
    try:
        running.start()
        with _environ(local_aws.client_env(running.sandbox_url)):
            settings = load_settings()
        # what `make up` creates before the UI is used: the roles Airflow runs as and the buckets (no demo
        # data: the forms are submitted with their defaults, and no run is started)
        create_pipeline_roles(
            running.sandbox_url, DAG_IDS, airflow_role=DEMO_AIRFLOW_ROLE, buckets=settings_buckets(settings)
        )
        s3 = running.s3_client()
        for bucket in bucket_names(settings):
            s3.create_bucket(Bucket=bucket)
        running.orchard_settings = settings
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(stack, tmp_path_factory):
    from local_aws.stack import admin_password

    with Chromium(tmp_path_factory.mktemp("chromium"), timeout_s=60) as chromium:
        chromium.goto(f"{stack.ui_url}/")
        chromium.wait_for("!!document.querySelector('input[name=username]')", what="the login form")
        chromium.eval("document.querySelector('input[name=username]').focus()")
        chromium.send("Input.insertText", text="admin")
        chromium.eval("document.querySelector('input[name=password]').focus()")
        chromium.send("Input.insertText", text=admin_password(stack.home))
        chromium.wait_for("!document.querySelector('button[type=submit]').disabled", what="Sign in enabled")
        chromium.eval("document.querySelector('button[type=submit]').click()")
        chromium.wait_for("!location.pathname.startsWith('/auth')", what="the login to finish")
        chromium.wait_for("document.body.innerText.includes('Dags')", what="the home page")
        chromium.screenshot(SCREENSHOTS / "00-home.png")
        yield chromium


def publish_report(stack, dag_id: str, run_id: str) -> str:
    from orchard.reports import Report, new_figure

    report = Report("Fruit features: CNN features → PCA on EMR", dag_id, run_id)
    report.add_text("A report published by the browser test, as `publish_report` writes one.")
    report.add_metrics({"rows": 120, "PCA k": 16, "explained variance": 0.951})
    fig = new_figure(figsize=(4, 3))
    fig.add_subplot().plot([0.5, 0.8, 0.9, 0.95], marker="o")
    report.add_figure("explained-variance", fig, caption="Explained variance by component")
    report.add_cost(
        [
            {
                "job": "emr-cluster",
                "service": "emr",
                "instance_type": "m5.xlarge",
                "billable_seconds": 600,
                "instance_count": 3,
                "region": "us-east-1",
            }
        ]
    )
    settings = stack.orchard_settings
    return report.publish(stack.s3_client(), settings.reports_bucket, settings.reports_prefix)


def test_reports_page_and_rendered_report(stack, browser):
    publish_report(stack, "fruit_features", RUN_ID)
    browser.goto(f"{stack.ui_url}/orchard-reports/")
    browser.wait_for("document.body.innerText.includes('Reports')", what="the Reports page")
    text = browser.text()
    assert "fruit_features" in text and RUN_ID in text
    assert "explained variance: 0.951" in text and "$" in text  # key metrics and the estimated cost
    browser.screenshot(SCREENSHOTS / "01-reports-page.png")

    browser.click(f"[...document.querySelectorAll('a')].find(a => a.innerText === {json.dumps(RUN_ID)})")
    browser.wait_for(
        "(document.querySelector('h1')?.innerText || '').includes('Fruit')", what="the rendered report"
    )
    browser.wait_for(
        "[...document.images].every(i => i.complete) && document.images.length > 0",
        what="the report's figures",
    )
    assert browser.eval("[...document.images].every(i => i.naturalWidth > 0)"), "a figure did not load"
    assert browser.eval("document.querySelectorAll('table').length") >= 2  # metrics and cost tables
    browser.screenshot(SCREENSHOTS / "02-rendered-report.png")

    # Through the UI's own plugin entry: the "Reports" entry of the nav bar is listed by the API server.
    plugins = stack.api("GET", "/plugins")
    views = [v for p in plugins["plugins"] if p["name"] == "orchard_ui" for v in p["external_views"]]
    assert {v["url_route"] for v in views} == {"orchard-reports", "orchard-run-report"}


def test_reports_app_answers_only_a_logged_in_user(stack):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{stack.api_url}/orchard-reports/", timeout=30)
    assert error.value.code == 401


# the trigger dialog: the one with a "Trigger" button (its params show as "Run Parameters" or, with
# orchard's form sections, one accordion per section)
DIALOG = (
    "[...document.querySelectorAll('[role=dialog]')]"
    ".find(d => [...d.querySelectorAll('button')].some(b => b.innerText.trim() === 'Trigger'))"
)
SUBMIT = f"[...{DIALOG}.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Trigger').pop()"
UNPAUSE = f"[...{DIALOG}.querySelectorAll('label')].find(l => l.innerText.includes('Unpause'))"
# text inputs the form marks required and leaves empty (select boxes keep their value elsewhere)
EMPTY_REQUIRED = (
    f"[...{DIALOG}.querySelectorAll('input:not([type=checkbox]), textarea')]"
    ".filter(i => !i.value && i.getAttribute('role') !== 'combobox'"
    " && (i.required || i.getAttribute('aria-required') === 'true'))"
    ".map(i => (i.closest('[data-part=root]') || i.parentElement).innerText.split('\\n')[0])"
)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_trigger_form_submits_with_its_defaults(stack, browser, dag_id):
    before = {r["dag_run_id"] for r in stack.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]}
    browser.goto(f"{stack.ui_url}/dags/{dag_id}")
    browser.click(
        "[...document.querySelectorAll('button')].find(e => e.innerText.trim() === 'Trigger')",
        what="the Trigger button",
    )
    browser.wait_for(f"!!{DIALOG}", what="the trigger form")
    # keep the DAG paused: the run is created (what the form's submission proves) and stays queued
    if browser.eval(f"!!{UNPAUSE}.querySelector('input:checked')"):
        browser.click(UNPAUSE, what="'Unpause on trigger'")
        browser.wait_for(f"!{UNPAUSE}.querySelector('input:checked')", what="'Unpause on trigger' unchecked")
    time.sleep(1)  # the form validates its defaults as it renders
    browser.screenshot(SCREENSHOTS / f"10-trigger-{dag_id}.png")
    disabled = browser.eval(f"{SUBMIT}.disabled")
    assert not disabled, (
        f"{dag_id}: the form's defaults do not pass its own validation (required and empty: "
        f"{', '.join(browser.eval(EMPTY_REQUIRED)) or 'see the screenshot'})"
    )
    browser.click(SUBMIT, what="the form's Trigger button")
    deadline = time.monotonic() + 60
    created: set[str] = set()
    while time.monotonic() < deadline and not created:
        created = {r["dag_run_id"] for r in stack.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]} - before
        time.sleep(1)
    browser.screenshot(SCREENSHOTS / f"11-triggered-{dag_id}.png")
    assert created, f"submitting {dag_id}'s form created no run; the page says: {browser.text()[-800:]}"
    [run_id] = created
    quoted = urllib.parse.quote(run_id, safe="")
    assert stack.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}")["state"] == "queued"  # paused: nothing runs

    # The run's "Report" tab (the plugin's dag_run view) shows its report once published.
    publish_report(stack, dag_id, run_id)
    browser.goto(f"{stack.ui_url}/dags/{dag_id}/runs/{quoted}")
    browser.click(
        "[...document.querySelectorAll('a')].find(e => e.innerText.trim() === 'Report')",
        what="the run's Report tab",
    )
    frames = "[...document.querySelectorAll('iframe')]"
    browser.wait_for(f"{frames}.some(f => f.src.includes('/orchard-reports/'))", what="the report frame")
    frame_url = browser.eval(f"{frames}.map(f => f.src).join()")
    assert f"/orchard-reports/runs/{dag_id}/{quoted}/" in frame_url
    frame = "[...document.querySelectorAll('iframe')].find(f => f.src.includes('/orchard-reports/'))"
    browser.wait_for(
        f"(({frame}).contentDocument?.body?.innerText || '').includes('Fruit features')",
        what="the report rendered in the tab (same-origin frame, logged in by the UI's cookie)",
    )
    browser.wait_for(
        f"[...({frame}).contentDocument.images].some(i => i.complete && i.naturalWidth > 0)",
        what="the report's figure in the tab",
    )
    browser.screenshot(SCREENSHOTS / f"12-run-report-tab-{dag_id}.png")


# ---- a human approval (issue 16 item 4): waiting in the UI, answered through the REST API -----------------

APPROVAL_DAG, APPROVAL_TASK = "aerial_pretraining", "approve_promotion"


def wait_until(check, timeout_s: float, what: str, stack, poll_s: float = 2):
    """``check()``'s first truthy value; fails after ``timeout_s`` or when a stack process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        for child in stack.dead_children():
            pytest.fail(f"the stack's {child.name} died:\n{child.log_tail()}")
        time.sleep(poll_s)
    pytest.fail(f"no {what} after {timeout_s:.0f} s")


@pytest.mark.timeout(1800)  # a whole aerial run on the stack (minutes on 2 loaded cores)
def test_approval_waits_in_the_ui_and_an_approve_through_the_rest_api_registers_the_model(stack, browser):
    """aerial_pretraining with require_approval on, as a person runs it: the run stops at approve_promotion
    (awaiting input, listed by GET .../hitlDetails, shown on the task's Required Actions page), the PATCH a
    person's Approve sends resumes it, and the run ends with the model registered."""
    from local_aws import sandbox_client
    from local_aws.demo_data import aerial_pretraining as demo

    stack.seed([APPROVAL_DAG], skip_upload=[APPROVAL_DAG])  # roles, buckets, the deployed job code
    conf = demo.upload(stack.s3_client(), stack.orchard_settings, patches=40)  # small: the run takes minutes
    conf.update(require_approval=True, promotion_margin=-1.0, poll_seconds=1, probe_epochs=2)
    # the trigger-form test's run waits, queued, with the production defaults: it must not start
    for earlier in stack.api("GET", f"/dags/{APPROVAL_DAG}/dagRuns")["dag_runs"]:
        stack.api(
            "DELETE", f"/dags/{APPROVAL_DAG}/dagRuns/{urllib.parse.quote(earlier['dag_run_id'], safe='')}"
        )
    stack.api("PATCH", f"/dags/{APPROVAL_DAG}", {"is_paused": False})
    run_id = "approval__2026-12-07T00:00:00"
    stack.api(
        "POST", f"/dags/{APPROVAL_DAG}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    )
    run_path = f"/dags/{APPROVAL_DAG}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def run_state() -> str:
        return stack.api("GET", run_path)["state"]

    def waiting_approval() -> dict | None:
        if run_state() == "failed":
            pytest.fail(f"the run failed before its approval: see {stack.log_dir}")
        details = stack.api("GET", f"{run_path}/hitlDetails")  # what the UI's Required Actions list shows
        return next(
            (
                d
                for d in details["hitl_details"]
                if d["task_instance"]["task_id"] == APPROVAL_TASK
                and d["task_instance"]["state"] in ("awaiting_input", "deferred")
            ),
            None,
        )

    request = wait_until(waiting_approval, 1200, "approval awaiting input", stack, poll_s=3)
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert request["subject"].startswith("Promote vit_demo/16 backbone: mAP ")
    assert "| test macro mAP |" in request["body"] and "evaluation.json" in request["body"]
    assert not request["response_received"]
    assert stack.api("GET", f"{run_path}/taskInstances/register_model")["state"] is None  # not before it

    # what the person sees: the task's Required Actions page, the request waiting for an answer
    browser.goto(f"{stack.ui_url}/dags/{APPROVAL_DAG}/runs/{run_id}/tasks/{APPROVAL_TASK}/required_actions")
    browser.wait_for("document.body.innerText.includes('Promote vit_demo/16')", what="the approval request")
    browser.wait_for(
        "[...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Approve')",
        what="the Approve button",
    )
    browser.screenshot(SCREENSHOTS / "20-approval-waiting.png")

    # A person reads before answering. An answer within seconds of the park, before the scheduler has drained
    # the parked worker's exit, is taken by Airflow 3.3.2 for an external kill of the resumed try: it is retried
    # and asks again (apache/airflow#67287, #72716; docs/architecture.md, "Human approvals"). The canary in
    # tests/plugins/operators/test_approval.py says when an upgrade makes this wait unnecessary.
    time.sleep(15)
    # the person's answer, as the UI sends it: PATCH .../taskInstances/{task_id}/{map_index}/hitlDetails
    answer = stack.api(
        "PATCH", f"{run_path}/taskInstances/{APPROVAL_TASK}/-1/hitlDetails", {"chosen_options": ["Approve"]}
    )
    assert answer["chosen_options"] == ["Approve"] and answer["responded_by"]["name"] == "admin"

    state = wait_until(
        lambda: (s := run_state()) in ("success", "failed") and s, 900, "end of the run", stack
    )
    assert state == "success", f"the run ended {state}: see {stack.log_dir}"
    assert stack.api("GET", f"{run_path}/taskInstances/register_model")["state"] == "success"
    outcome = stack.api("GET", f"{run_path}/taskInstances/{APPROVAL_TASK}/xcomEntries/return_value")["value"]
    outcome = json.loads(outcome) if isinstance(outcome, str) else outcome
    assert outcome["approved"] is True and outcome["note"] == "approved by admin"
    sagemaker = sandbox_client("sagemaker", stack.sandbox_url)
    packages = sagemaker.list_model_packages(ModelPackageGroupName="aerial-dino-vit")
    [package] = packages["ModelPackageSummaryList"]  # registered once, after the approval
    # approved by a person in Airflow: the registry records who and when and does not ask again
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"].startswith("Approved in Airflow by admin at ")
    assert run_id in described["ApprovalDescription"]
