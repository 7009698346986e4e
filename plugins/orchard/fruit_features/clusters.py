"""The run's EMR clusters and steps and its export job, found by their deterministic orchard names.

Issue 14: nothing billable depends on a task's XCom to be found again.

* `OrchardEmrCreateJobFlowOperator`: RunJobFlow once per run and scaling point. A retry (or a try that
  failed after RunJobFlow, its id lost) finds the cluster by its name (`naming.resource_name`, unique per
  DAG, run and point) and `orchard:dag` tag in a non-terminal state and waits on it instead of creating one.
* `OrchardEmrAddStepsOperator`: a step already added (same name, not FAILED/CANCELLED) is not added again;
  a step that failed on an input error (the job printed `orchard.errors.INPUT_ERROR_PREFIX`, exited 65)
  ends the task with `InputError`: no Airflow retry runs the step again.
* `terminate_run_clusters` / `stop_export_jobs`: cleanup by name whatever failed and wherever (the
  teardowns call them; a failure of either fails the run).
* Waits: `require_cluster` fails at once, naming the cluster, when EMR answers that it does not exist.

EMR API references: ListClusters
(https://docs.aws.amazon.com/emr/latest/APIReference/API_ListClusters.html: ClusterStates filter, Name in
each ClusterSummary), ListSteps (https://docs.aws.amazon.com/emr/latest/APIReference/API_ListSteps.html),
TerminateJobFlows (https://docs.aws.amazon.com/emr/latest/APIReference/API_TerminateJobFlows.html), and
InvalidRequestException for an unknown cluster id (DescribeCluster,
https://docs.aws.amazon.com/emr/latest/APIReference/API_DescribeCluster.html). SageMaker:
ListProcessingJobs (NameContains, StatusEquals) and StopProcessingJob
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopProcessingJob.html).
"""

from __future__ import annotations

import ast
import time
from typing import Any

from orchard.compat import EmrCreateJobFlowOperator
from orchard.errors import InputError, is_input_failure
from orchard.fruit_features.waits import EmrAddStepsSizedWait, as_attempts, as_seconds
from orchard.operators.stop_requests import ended_by_a_person

# ClusterState values (https://docs.aws.amazon.com/emr/latest/APIReference/API_ClusterStatus.html).
ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
ENDED_STATES = ("TERMINATED", "TERMINATED_WITH_ERRORS")
REUSABLE_STEP_STATES = ("PENDING", "CANCEL_PENDING", "RUNNING", "COMPLETED")
DAG_TAG = "orchard:dag"


class ClusterGone(RuntimeError):
    """EMR says the cluster does not exist (InvalidRequestException): a wait on it can never end well."""


def run_clusters(emr: Any, name: str, dag_id: str, states: tuple[str, ...] = ACTIVE_STATES) -> list[str]:
    """Ids of the clusters named `name` (and tagged orchard:dag=<dag_id>) in `states`, oldest first."""
    found = []
    for page in emr.get_paginator("list_clusters").paginate(ClusterStates=list(states)):
        found += [c for c in page.get("Clusters", []) if c.get("Name") == name]
    ids = []
    for cluster in sorted(found, key=lambda c: str(c["Status"].get("Timeline", {}).get("CreationDateTime"))):
        tags = emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"].get("Tags", [])
        if {"Key": DAG_TAG, "Value": dag_id} in tags:
            ids.append(cluster["Id"])
    return ids


def dag_of(overrides: dict[str, Any]) -> str:
    tags = {tag["Key"]: tag["Value"] for tag in overrides.get("Tags", [])}
    if DAG_TAG not in tags:
        raise ValueError(f"the RunJobFlow request {overrides.get('Name')} has no {DAG_TAG} tag to find it by")
    return tags[DAG_TAG]


def require_cluster(emr: Any, cluster_id: str) -> dict[str, Any]:
    """DescribeCluster, or ClusterGone naming the cluster when EMR does not know it."""
    try:
        return emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    except emr.exceptions.InvalidRequestException as error:
        raise ClusterGone(
            f"EMR cluster {cluster_id} does not exist any more ({error.response['Error']['Message']}): "
            "nothing can finish on it; clear the scaling_run tasks to start a new cluster"
        ) from error


class OrchardEmrCreateJobFlowOperator(EmrCreateJobFlowOperator):
    """EmrCreateJobFlowOperator that calls RunJobFlow only when the run has no live cluster of that name,
    and whose on_kill terminates the cluster only when a person stopped the task, not on a worker's
    graceful shutdown (the provider's on_kill terminates it on both: the retry then started over).

    `waiter_delay` and `waiter_max_attempts` (templated in the provider) may render from the run's params,
    e.g. "{{ params.poll_seconds }}": they are made ints before the wait. Deferred, it waits with
    `orchard.triggers.emr_cluster.EmrClusterReadyTrigger`, which ends the task once the cluster is ready
    (`end_in_trigger`: the resume would only return the cluster id)."""

    _ti: Any = None

    def defer(self, *, trigger: Any, **kwargs: Any) -> Any:
        from orchard.triggers.emr_cluster import cluster_ready_trigger
        from orchard.triggers.task_end import may_end_in_trigger

        trigger = cluster_ready_trigger(self, trigger, end_in_trigger=may_end_in_trigger(self))
        return super().defer(trigger=trigger, **kwargs)

    def on_kill(self) -> None:
        if self._ti is not None and not ended_by_a_person(self._ti, self.log):
            self.log.info("worker shutdown: cluster %s kept for the retry to reattach", self._job_flow_id)
            return
        super().on_kill()

    def execute(self, context: Any) -> str | None:
        self._ti = context.get("ti")
        self.waiter_delay = as_seconds(self.waiter_delay, "waiter_delay")
        self.waiter_max_attempts = as_attempts(self.waiter_max_attempts, "waiter_max_attempts")
        if isinstance(self.job_flow_overrides, str):  # as the provider accepts it (a rendered literal)
            self.job_flow_overrides = ast.literal_eval(self.job_flow_overrides)
        overrides = self.job_flow_overrides
        name, dag_id = overrides["Name"], dag_of(overrides)
        existing = run_clusters(self.hook.conn, name, dag_id)
        if existing:
            cluster_id = existing[-1]
            self.log.info(
                "cluster %s (%s) exists from an earlier try: waiting on it, no RunJobFlow", name, cluster_id
            )
            # The provider's execute then persists the links and defers on this cluster as on a new one.
            self.hook.create_job_flow = lambda _overrides: {  # type: ignore[method-assign]
                "JobFlowId": cluster_id,
                "ResponseMetadata": {"HTTPStatusCode": 200},
            }
        return super().execute(context)


class OrchardEmrAddStepsOperator(EmrAddStepsSizedWait):
    """Adds the steps the cluster does not have yet (by name); an input error in a step is final."""

    def execute(self, context: Any) -> list[str]:
        emr = self.hook.conn
        require_cluster(emr, self.job_flow_id)
        steps = self.steps
        names = [step["Name"] for step in steps]
        by_name: dict[str, dict[str, Any]] = {}
        for page in emr.get_paginator("list_steps").paginate(ClusterId=self.job_flow_id):
            for step in page.get("Steps", []):
                by_name.setdefault(step["Name"], step)  # ListSteps answers newest first
        for name in names:
            failure = (by_name.get(name) or {}).get("Status", {}).get("FailureDetails", {})
            if is_input_failure(failure.get("Message")):
                raise InputError(
                    f"step {name} of cluster {self.job_flow_id} failed on its input: "
                    f"{failure['Message']} (log: {failure.get('LogFile', 'the step logs')})"
                )
        reuse = {
            name: by_name[name]["Id"]
            for name in names
            if name in by_name and by_name[name]["Status"]["State"] in REUSABLE_STEP_STATES
        }
        if reuse and len(reuse) == len(names):
            self.log.info("steps %s were added by an earlier try: waiting on them", reuse)
            ids = [reuse[name] for name in names]
            self.hook.add_job_flow_steps = lambda *args, **kwargs: ids  # type: ignore[method-assign]
        elif reuse:
            self.steps = [step for step in steps if step["Name"] not in reuse]
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if event and event.get("status") != "success":
            for failure in self._failures():
                if is_input_failure(failure.get("Message")):
                    raise InputError(
                        f"the Spark step failed on its input: {failure['Message']} (step log: "
                        f"{failure.get('LogFile', 'see the step logs')})"
                    )
        return super().execute_complete(context, event)

    def _failures(self) -> list[dict[str, Any]]:
        emr = self.hook.conn
        steps = emr.list_steps(ClusterId=self.job_flow_id, StepStates=["FAILED"]).get("Steps", [])
        return [step["Status"].get("FailureDetails", {}) for step in steps]


def terminate_run_clusters(
    emr: Any, name: str, dag_id: str, poll_seconds: float, limit_s: float
) -> list[str]:
    """Terminate every live cluster named `name` of the DAG, wait until each is TERMINATED; their ids."""
    ids = run_clusters(emr, name, dag_id)
    if not ids:
        print(f"no live cluster named {name}: nothing to terminate")
        return []
    emr.terminate_job_flows(JobFlowIds=ids)
    print(f"terminating {', '.join(ids)} ({name})")
    deadline = time.monotonic() + limit_s
    pending = set(ids)
    while pending:
        for cluster_id in sorted(pending):
            try:
                state = require_cluster(emr, cluster_id)["Status"]["State"]
            except ClusterGone:
                state = "TERMINATED"  # nothing left to pay for
            if state in ENDED_STATES:
                pending.discard(cluster_id)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(
                f"clusters {sorted(pending)} ({name}) still not terminated after {limit_s:.0f} s: "
                "terminate them in the EMR console"
            )
        if pending:
            time.sleep(poll_seconds)
    return ids


def stop_export_jobs(sagemaker: Any, base: str, tries: int = 10) -> list[str]:
    """Stop every InProgress processing job of the run's export: `base` and its retries' names."""
    from orchard.operators.sagemaker_job_retry import attempt_name

    names = {attempt_name(base, attempt) for attempt in range(1, tries + 1)}
    stopped = []
    pages = sagemaker.get_paginator("list_processing_jobs").paginate(
        NameContains=base[:40], StatusEquals="InProgress"
    )
    for page in pages:
        for job in page.get("ProcessingJobSummaries", []):
            if job["ProcessingJobName"] in names:
                sagemaker.stop_processing_job(ProcessingJobName=job["ProcessingJobName"])
                stopped.append(job["ProcessingJobName"])
    print(f"stopped export jobs: {stopped}" if stopped else f"no export job {base} in progress")
    return stopped


def sweep_run_resources(
    emr: Any,
    sagemaker: Any,
    requests: list[dict[str, Any]] | None,
    export_base: str,
    poll_seconds: float,
    limit_s: float,
) -> dict[str, list[str]]:
    """The sweep (orchard.sweep): the teardowns' own removal run again by name; teardown -> what it left.
    `requests` is cluster_requests' output (None when that task never ran: no cluster was requested);
    one ListClusters per scaling point and one ListProcessingJobs when nothing is left.

    The scaling points' clusters and the export job are swept at once (a thread each, clients shared: the
    sweep waits for the slowest, not for their sum); a failure is raised in that order once all have run."""
    from concurrent.futures import ThreadPoolExecutor

    overrides = [request["overrides"] for request in requests or []]

    def terminate(cluster: dict[str, Any]) -> list[str]:
        return terminate_run_clusters(emr, cluster["Name"], dag_of(cluster), poll_seconds, limit_s)

    # a cluster thread each + the export's (within botocore's 10 connections: at most 5 scaling points)
    with ThreadPoolExecutor(max_workers=len(overrides) + 1) as pool:
        stopping = pool.submit(stop_export_jobs, sagemaker, export_base)
        terminating = [pool.submit(terminate, cluster) for cluster in overrides]
        ended = [future.result() for future in terminating]
        stopped = stopping.result()
    clusters = [
        f"cluster {cluster_id} ({cluster['Name']})"
        for cluster, ids in zip(overrides, ended, strict=True)
        for cluster_id in ids
    ]
    return {
        "scaling_run.terminate_cluster": clusters,
        "stop_export": [f"export job {name} (stopped)" for name in stopped],
    }
