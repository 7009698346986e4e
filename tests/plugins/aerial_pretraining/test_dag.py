"""aerial_pretraining's DAG-level contracts: task timeouts derived from the form, defaults from settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchard.aerial_pretraining.plan import pretrain_request
from orchard.operators.sagemaker_job_retry import wait_budget
from tests.dag_files import load_dag_module

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "aerial_pretraining.py"
CODE = {"sourcedir_uri": "s3://b/code/sourcedir.tar.gz", "files_uri": "s3://b/code/files/"}
RUN_ID = "manual__2026-11-21T10:00:00+00:00"


@pytest.fixture(scope="module")
def module():
    return load_dag_module(DAG_FILE)


@pytest.fixture(scope="module")
def dag(module):
    return module.aerial_pretraining()


def _longest_params(module, spot: bool) -> dict:
    params = {key: param.value for key, param in module.PARAMS.items()}
    params["max_runtime_hours"] = module.PARAMS["max_runtime_hours"].schema["maximum"]
    params["use_spot_instances"] = spot
    params["spot_max_wait_hours"] = module.PARAMS["spot_max_wait_hours"].schema["maximum"]
    return params


@pytest.mark.parametrize("spot", [False, True])
def test_pretrain_task_outlives_the_longest_job_the_form_allows(module, dag, spot):
    from orchard.settings import load_settings

    request = pretrain_request(_longest_params(module, spot), load_settings(variables=False), RUN_ID, CODE)
    _, wait_seconds = wait_budget(request["StoppingCondition"], 60)
    timeout = dag.get_task("pretrain").execution_timeout
    # max_runtime_hours up to 120 h: a task timeout shorter than the operator's wait kills a legal job.
    assert timeout >= timedelta(seconds=wait_seconds) + timedelta(minutes=30), (timeout, wait_seconds / 3600)


def test_bucket_defaults_come_from_settings(monkeypatch):
    # Already true before issue 12 (the DAG reads load_settings at parse time); kept as a regression guard.
    monkeypatch.setenv("ORCHARD_DATA_BUCKET", "acme-raw")
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", "acme-models")
    params = load_dag_module(DAG_FILE).PARAMS
    assert params["raw_dataset_uri"].value.startswith("s3://acme-raw/")
    assert params["baseline_checkpoint_uri"].value.startswith("s3://acme-models/")
    sources = [DAG_FILE, *(DAG_FILE.parents[1] / "plugins" / "orchard" / "aerial_pretraining").glob("*.py")]
    for source in sources:
        text = source.read_text()
        assert "orchard-data" not in text and "orchard-artifacts" not in text, f"{source} names a bucket"


def test_the_cleanup_runs_whatever_failed_and_its_failure_fails_the_run(dag):
    """14.1: the teardown that stops the run's jobs runs ALL_DONE and a failure of it fails the run."""
    cleanup = dag.get_task("stop_jobs_left_running")
    assert cleanup.is_teardown and cleanup.on_failure_fail_dagrun
    assert cleanup.trigger_rule == "all_done_setup_success"
    assert dag.get_task("plan_jobs").is_setup  # nothing billable exists before plan_jobs succeeds
    # it waits for every job task, and the report (the run's leaf) waits for it
    assert {"prepare_dataset", "pretrain", "linear_probe"} <= cleanup.upstream_task_ids
    assert [task.task_id for task in dag.leaves] == ["publish_report"]


def test_the_cleanup_finds_every_job_the_run_starts_by_its_name(dag):
    from orchard.aerial_pretraining.plan import RUN_JOBS, job_name, prepare_request, probe_request

    params = {key: param.value for key, param in dag.params.items()}
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    started = {
        prepare_request(params, settings, RUN_ID, CODE)["ProcessingJobName"],
        pretrain_request(params, settings, RUN_ID, CODE)["TrainingJobName"],
        *(
            probe_request(params, settings, RUN_ID, CODE, backbone, "s3://b/m.tar.gz")["TrainingJobName"]
            for backbone in ("aerial-dino", "baseline")
        ),
    }
    assert {job_name(resource, RUN_ID, suffix) for _, resource, suffix in RUN_JOBS} == started
