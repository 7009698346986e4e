"""fruit_features' billable resources are found again by name (issue 14): RunJobFlow once per run and point,
a step added once, cleanup by name whatever failed, a vanished cluster named at once."""

from __future__ import annotations

from unittest import mock

import boto3
import pytest
from moto import mock_aws

from orchard.errors import InputError
from orchard.fruit_features import clusters

NAME = "fruit_features-manual-20261206T204525-nodes2-e81335ae2a"
OVERRIDES = {
    "Name": NAME,
    "ReleaseLabel": "emr-7.5.0",
    "Instances": {
        "InstanceGroups": [
            {"Name": "primary", "InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1}
        ],
        "KeepJobFlowAliveWhenNoSteps": True,
    },
    "JobFlowRole": "EMR_EC2_DefaultRole",
    "ServiceRole": "EMR_DefaultRole",
    "Tags": [{"Key": "orchard:dag", "Value": "fruit_features"}],
}
STEP = {
    "Name": "fruit_features-extract-nodes2",
    "ActionOnFailure": "CONTINUE",
    "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "job.py"]},
}


@pytest.fixture
def emr(monkeypatch, in_process_moto):
    # moto in-process (clusters go WAITING at once), not the session's sandbox
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("emr", region_name="us-east-1")


def create_operator(**kwargs):
    return clusters.OrchardEmrCreateJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides=OVERRIDES,
        emr_conn_id=None,
        region_name="us-east-1",
        wait_for_completion=False,
        **kwargs,
    )


def add_steps_operator(cluster_id: str):
    return clusters.OrchardEmrAddStepsOperator(
        task_id="extract",
        job_flow_id=cluster_id,
        steps=[STEP],
        region_name="us-east-1",
        waiter_max_attempts="3",
    )


def live(emr) -> list[str]:
    return [c["Id"] for c in emr.list_clusters(ClusterStates=list(clusters.ACTIVE_STATES))["Clusters"]]


def test_a_retry_of_create_cluster_reattaches_instead_of_calling_runjobflow_again(emr):
    first = create_operator().execute(mock.MagicMock())
    again = create_operator().execute(mock.MagicMock())  # the retry: same run, same scaling point
    assert again == first and live(emr) == [first]


def test_a_cluster_of_another_run_or_dag_or_an_ended_one_is_not_reattached(emr):
    other_dag = {**OVERRIDES, "Tags": [{"Key": "orchard:dag", "Value": "someone_else"}]}
    foreign = emr.run_job_flow(**other_dag)["JobFlowId"]
    ended = emr.run_job_flow(**OVERRIDES)["JobFlowId"]
    emr.terminate_job_flows(JobFlowIds=[ended])
    created = create_operator().execute(mock.MagicMock())
    assert created not in (foreign, ended)
    assert clusters.run_clusters(emr, NAME, "fruit_features") == [created]


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETED"])
def test_a_step_already_added_is_not_added_again(emr, state):
    # ListSteps is stubbed: moto's steps change state under the session sandbox's patches (same process)
    cluster_id = emr.run_job_flow(**OVERRIDES)["JobFlowId"]
    earlier = {"Id": "s-EARLIER", "Name": STEP["Name"], "Status": {"State": state}}
    paginator = mock.MagicMock()
    paginator.paginate.return_value = [{"Steps": [earlier]}]
    with (
        mock.patch("botocore.client.BaseClient.get_paginator", return_value=paginator),
        mock.patch("botocore.client.BaseClient._make_api_call", wraps=None) as api,
    ):
        again = add_steps_operator(cluster_id).execute(mock.MagicMock())
    assert again == ["s-EARLIER"]
    assert not [c for c in api.call_args_list if c.args and c.args[0] == "AddJobFlowSteps"]


def test_a_step_that_failed_on_its_input_ends_the_task_without_retry(emr):
    cluster_id = emr.run_job_flow(**OVERRIDES)["JobFlowId"]
    failed = {
        "Id": "s-1",
        "Name": STEP["Name"],
        "Status": {
            "State": "FAILED",
            "FailureDetails": {"Message": "InputError: no images under s3://data/fruits/: upload the photos"},
        },
    }
    operator = add_steps_operator(cluster_id)
    paginator = mock.MagicMock()
    paginator.paginate.return_value = [{"Steps": [failed]}]
    with mock.patch("botocore.client.BaseClient.get_paginator", return_value=paginator):
        with pytest.raises(InputError, match="no images under s3://data/fruits/"):
            operator.execute(mock.MagicMock())


@pytest.mark.serial
def test_cleanup_finds_the_run_cluster_by_name_even_when_create_cluster_lost_its_id(emr):
    """create_cluster failed right after RunJobFlow (no XCom): the teardown terminates it by name."""
    lost = emr.run_job_flow(**OVERRIDES)["JobFlowId"]
    foreign = emr.run_job_flow(**{**OVERRIDES, "Name": "another-run"})["JobFlowId"]
    assert clusters.terminate_run_clusters(emr, NAME, "fruit_features", 0, 5) == [lost]
    assert live(emr) == [foreign]
    assert clusters.terminate_run_clusters(emr, NAME, "fruit_features", 0, 5) == []  # nothing left: no error


@pytest.mark.serial
def test_the_sweep_terminates_what_the_cluster_teardown_left_and_names_it(emr):
    """terminate_cluster failed before its calls: the sweep finds the cluster by the request's name and tag,
    terminates it and names it; once nothing is left it reports nothing (one ListClusters per point)."""
    left = emr.run_job_flow(**OVERRIDES)["JobFlowId"]
    foreign = emr.run_job_flow(**{**OVERRIDES, "Name": "another-run"})["JobFlowId"]
    sagemaker = mock.MagicMock()
    sagemaker.get_paginator.return_value.paginate.return_value = [{"ProcessingJobSummaries": []}]
    requests = [{"overrides": OVERRIDES, "steps": [STEP], "point": {"core_nodes": 2}}]

    swept = clusters.sweep_run_resources(emr, sagemaker, requests, "export-base", 0, 60)

    assert swept == {"scaling_run.terminate_cluster": [f"cluster {left} ({NAME})"], "stop_export": []}
    assert live(emr) == [foreign]
    assert clusters.sweep_run_resources(emr, sagemaker, requests, "export-base", 0, 60) == {
        "scaling_run.terminate_cluster": [],
        "stop_export": [],
    }
    # cluster_requests never ran (its XCom is None): no cluster was requested, only the export is looked for
    assert clusters.sweep_run_resources(emr, sagemaker, None, "export-base", 0, 60)["stop_export"] == []


def test_a_vanished_cluster_is_named_at_once(emr):
    with pytest.raises(clusters.ClusterGone, match="EMR cluster j-GONE does not exist any more"):
        clusters.require_cluster(emr, "j-GONE")
    with pytest.raises(clusters.ClusterGone, match="j-GONE"):
        add_steps_operator("j-GONE").execute(mock.MagicMock())


def test_the_export_cleanup_stops_every_try_of_the_runs_export_job_only():
    from orchard.operators.sagemaker_job_retry import attempt_name

    base = "fruit-features-manual-20261206t204525-export-ee20c1c2a7"
    names = [base, attempt_name(base, 2), "fruit-features-manual-20261206t204525-export-other"]
    sagemaker = mock.MagicMock()
    sagemaker.get_paginator.return_value.paginate.return_value = [
        {"ProcessingJobSummaries": [{"ProcessingJobName": n} for n in names]}
    ]
    assert clusters.stop_export_jobs(sagemaker, base) == names[:2]
    kwargs = sagemaker.get_paginator.return_value.paginate.call_args.kwargs
    assert kwargs["StatusEquals"] == "InProgress" and base.startswith(kwargs["NameContains"])
    assert [c.kwargs["ProcessingJobName"] for c in sagemaker.stop_processing_job.call_args_list] == names[:2]


@pytest.mark.parametrize(
    ("server_state", "terminated"),
    [("running", False), ("failed", True), ("success", True), ("up_for_retry", True), (None, False)],
)
def test_on_kill_terminates_the_cluster_only_when_a_person_stopped_the_task(emr, server_state, terminated):
    """A worker's graceful SIGTERM (state still running) keeps the paid cluster for the retry; "mark
    failed"/"stop run" (the server changed the state first) terminates it. No answer: kept."""
    ti = mock.MagicMock(
        dag_id="fruit_features", task_id="scaling_run.create_cluster", run_id="r1", map_index=0
    )
    ti.get_task_states.return_value = (
        {"r1": {"scaling_run.create_cluster_0": server_state}} if server_state else {}
    )
    operator = create_operator()
    cluster_id = operator.execute({"ti": ti})
    operator.on_kill()
    assert (cluster_id not in live(emr)) is terminated


@pytest.mark.parametrize(
    "trigger_name",
    [
        "EmrCreateJobFlowTrigger",
        "EmrAddStepsTrigger",
        "EmrStepSensorTrigger",
        "EmrAddStepsLogTrigger",  # what the DAG's step waits defer with (they also log the step's lines)
        "EmrStepLogTrigger",
        "EmrClusterReadyTrigger",  # what create_cluster defers with (it may end the task)
    ],
)
def test_the_dags_emr_waits_fail_at_the_first_poll_on_a_vanished_cluster(aws, trigger_name):
    """Issue 14.3, through the sandbox: a cluster EMR does not know (e.g. lost with a restart) ends each wait
    the DAG defers on at once, naming the cluster, instead of polling for hours."""
    import asyncio
    import time

    from orchard import compat
    from orchard.triggers import emr_cluster, emr_step

    kwargs = {"job_flow_id": "j-GONE", "aws_conn_id": None, "waiter_delay": 1, "waiter_max_attempts": 500}
    if trigger_name.startswith("EmrAddSteps"):
        kwargs["step_ids"] = ["s-1"]
    if trigger_name.startswith("EmrStep"):
        kwargs["step_id"] = "s-1"
    module = emr_cluster if "Ready" in trigger_name else emr_step if "Log" in trigger_name else compat
    trigger = getattr(module, trigger_name)(**kwargs)

    async def first_event():
        async for event in trigger.run():
            return event

    started = time.monotonic()
    try:
        event = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
        assert event.payload["status"] == "error", event.payload
        outcome = event.payload["message"]
    except Exception as error:  # the provider raises on a non-retryable waiter error
        outcome = str(error)
    assert "Cluster id 'j-GONE' is not valid" in outcome, outcome
    assert time.monotonic() - started < 30


class _NoExportJobs:
    """SageMaker with no processing job in progress."""

    def get_paginator(self, operation):
        assert operation == "list_processing_jobs"
        return mock.Mock(paginate=mock.Mock(return_value=[{"ProcessingJobSummaries": []}]))


def test_the_sweep_looks_for_every_points_cluster_and_the_export_at_once(emr):
    """Each scaling point's ListClusters and the export's ListProcessingJobs answer only once all three are in
    flight (one by one they time out): the sweep waits for the slowest, not for their sum."""
    from tests.plugins.fruit_features.gates import Gated, barrier

    both = barrier(3)
    listings = lambda name, _: name == "get_paginator"  # noqa: E731
    requests = [
        {
            "overrides": {**OVERRIDES, "Name": f"{NAME}-{nodes}"},
            "steps": [STEP],
            "point": {"core_nodes": nodes},
        }
        for nodes in (2, 4)
    ]
    left = emr.run_job_flow(**requests[1]["overrides"])["JobFlowId"]

    swept = clusters.sweep_run_resources(
        Gated(emr, both, listings), Gated(_NoExportJobs(), both, listings), requests, "export-base", 0, 60
    )

    assert swept == {"scaling_run.terminate_cluster": [f"cluster {left} ({NAME}-4)"], "stop_export": []}
