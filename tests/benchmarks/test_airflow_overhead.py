"""benchmarks/airflow_overhead.py counts a SageMaker endpoint's own work (creation, async answers) as AWS time,
from what ListEndpoints, DescribeEndpoint(Config) and S3 say, and "AWS s" from each job's creation and an EMR
cluster's provisioning: fixed data in AWS's shapes, no stack."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import airflow_overhead as overhead  # noqa: E402

T0 = dt.datetime(2026, 12, 7, 9, 17, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_answers_close_together_are_one_stretch_and_a_long_silence_splits_them():
    times = [T0.timestamp() + s for s in (12.5, 10, 11, 100, 101.5)]
    assert overhead.answer_stretches(times, gap_s=30) == [
        (T0.timestamp() + 10, T0.timestamp() + 12.5),
        (T0.timestamp() + 100, T0.timestamp() + 101.5),
    ]


def test_a_lone_answer_counts_nothing():
    assert overhead.answer_stretches([T0.timestamp() + 5, T0.timestamp() + 50], gap_s=30) == []


def test_endpoint_jobs_are_its_creation_and_its_answering_after_creation():
    endpoint = overhead.WatchedEndpoint("auto-labeling-run-1", created=100.0, ready=105.0)
    # 90: an answer under the same prefix from before this endpoint existed is not its work
    jobs = overhead.endpoint_jobs(endpoint, [90.0, 120.0, 121.0, 125.0])
    assert [(j.kind, j.name, j.start, j.end) for j in jobs] == [
        ("endpoint creation", "auto-labeling-run-1", 100.0, 105.0),
        ("async inference", "auto-labeling-run-1", 120.0, 125.0),
    ]
    assert all(overhead.owned_by(j, "auto_labeling") for j in jobs)
    assert not any(overhead.owned_by(j, "edge_deployment") for j in jobs)


def test_an_endpoint_never_seen_ready_has_no_creation_job():
    endpoint = overhead.WatchedEndpoint("auto-labeling-run-1", created=100.0)
    assert overhead.endpoint_jobs(endpoint, []) == []


class FakeSageMaker:
    """ListEndpoints / DescribeEndpoint / DescribeEndpointConfig answers, in AWS's shapes."""

    def __init__(self):
        self.summaries: list[dict] = []
        self.configs = {
            "cfg-async": {
                "AsyncInferenceConfig": {
                    "OutputConfig": {"S3OutputPath": "s3://art/out/", "S3FailurePath": "s3://art/fail/"}
                }
            },
            "cfg-realtime": {},
        }
        self.endpoint_configs = {"auto-labeling-a": "cfg-async", "edge-rt": "cfg-realtime"}

    def list_endpoints(self, **_):
        return {"Endpoints": self.summaries}

    def describe_endpoint(self, EndpointName):
        return {"EndpointName": EndpointName, "EndpointConfigName": self.endpoint_configs[EndpointName]}

    def describe_endpoint_config(self, EndpointConfigName):
        return self.configs[EndpointConfigName]


def summary(name: str, status: str, created: float, modified: float) -> dict:
    return {
        "EndpointName": name,
        "EndpointStatus": status,
        "CreationTime": at(created),
        "LastModifiedTime": at(modified),
    }


def test_watch_takes_creation_end_from_the_first_sample_out_of_creating():
    sm, watch = FakeSageMaker(), overhead.EndpointWatch("http://unused")
    sm.summaries = [summary("auto-labeling-a", "Creating", 0, 0)]
    watch.observe(sm)
    endpoint = watch.endpoints["auto-labeling-a"]
    assert endpoint.created == T0.timestamp() and endpoint.ready is None
    assert endpoint.answer_paths == ["s3://art/out/", "s3://art/fail/"]
    sm.summaries = [summary("auto-labeling-a", "InService", 0, 6.5)]
    watch.observe(sm)
    sm.summaries = [summary("auto-labeling-a", "Deleting", 0, 90)]  # deletion later is not creation
    watch.observe(sm)
    assert endpoint.ready == T0.timestamp() + 6.5


def test_watch_first_seeing_an_endpoint_deleting_counts_no_creation():
    sm, watch = FakeSageMaker(), overhead.EndpointWatch("http://unused")
    sm.summaries = [summary("auto-labeling-a", "Deleting", 0, 90)]
    watch.observe(sm)
    assert watch.endpoints["auto-labeling-a"].ready is None


def test_a_realtime_endpoint_has_no_answer_paths():
    sm, watch = FakeSageMaker(), overhead.EndpointWatch("http://unused")
    sm.summaries = [summary("edge-rt", "InService", 0, 3)]
    watch.observe(sm)
    assert watch.endpoints["edge-rt"].answer_paths == []
    assert watch.endpoints["edge-rt"].ready == T0.timestamp() + 3


# "AWS s": from each job's creation/submission to its end, and an EMR cluster's provisioning


def ms(seconds: float) -> int:
    return int((T0.timestamp() + seconds) * 1000)  # Batch and IoT answer epoch milliseconds


class FakeBatch:
    def __init__(self, jobs: list[dict]):
        self.jobs = jobs

    def describe_job_queues(self):
        return {"jobQueues": [{"jobQueueName": "q"}]}

    def list_jobs(self, jobQueue, jobStatus, **_):
        return {"jobSummaryList": [{"jobId": j["jobId"]} for j in self.jobs if j["status"] == jobStatus]}

    def describe_jobs(self, jobs):
        return {"jobs": [j for j in self.jobs if j["jobId"] in jobs]}


class FakeEmr:
    """ListClusters' ClusterSummary and ListSteps' StepSummary, with their Status.Timeline."""

    def list_clusters(self, **_):
        timeline = {"CreationDateTime": at(90), "ReadyDateTime": at(150)}
        return {"Clusters": [{"Id": "j-1", "Name": "fruit-features-run-0", "Status": {"Timeline": timeline}}]}

    def list_steps(self, ClusterId, **_):
        timeline = {"CreationDateTime": at(150), "StartDateTime": at(160), "EndDateTime": at(200)}
        return {"Steps": [{"Name": "extract", "Status": {"Timeline": timeline}}]}


class Unused:
    def __getattr__(self, name):
        def call(**_):
            raise RuntimeError("not used by this run")

        return call


def fake_clients(batch_jobs: list[dict]):
    clients = {"batch": FakeBatch(batch_jobs), "emr": FakeEmr()}
    return lambda service, url: clients.get(service, Unused())


BATCH_JOB = {
    "jobId": "b-1",
    "jobName": "fruit-features-export-run-0",
    "status": "SUCCEEDED",
    "createdAt": ms(0),  # SUBMITTED at 0, RUNNABLE/STARTING until 30
    "startedAt": ms(30),
    "stoppedAt": ms(100),
}


def test_sandbox_jobs_read_each_jobs_creation_and_an_emr_clusters_provisioning(monkeypatch):
    monkeypatch.setattr(overhead, "sandbox_client", fake_clients([BATCH_JOB]))
    notes: list[str] = []
    jobs = {j.kind: j for j in overhead.sandbox_jobs("http://unused", notes)}
    t = T0.timestamp()
    batch, cluster, step = jobs["batch"], jobs["emr cluster"], jobs["emr step"]
    assert (batch.created, batch.start, batch.end) == (t, t + 30, t + 100)
    assert (cluster.created, cluster.start, cluster.end) == (t + 90, None, t + 150)
    assert (step.created, step.start, step.end) == (t + 150, t + 160, t + 200)
    assert not any("no creation time" in n for n in notes)


def test_a_job_without_its_creation_time_is_named(monkeypatch):
    job = {k: v for k, v in BATCH_JOB.items() if k != "createdAt"}
    monkeypatch.setattr(overhead, "sandbox_client", fake_clients([job]))
    notes: list[str] = []
    overhead.sandbox_jobs("http://unused", notes)
    assert "batch fruit-features-export-run-0: no creation time" in notes


class FakeStack:
    """A finished run from 0 to 220 s with no task instances (the critical path is empty)."""

    home = Path("/nonexistent")

    def api(self, method, path):
        if path.endswith("/upstreamAssetEvents"):
            return {"asset_events": []}
        if "/taskInstances" in path:
            return {"task_instances": []}
        if path.endswith("/tasks"):
            return {"tasks": []}
        return {"state": "success", "start_date": at(0), "end_date": at(220)}


def test_aws_seconds_are_the_union_of_held_intervals_and_the_headline_counts_only_runs(monkeypatch):
    monkeypatch.setattr(overhead, "sandbox_client", fake_clients([BATCH_JOB]))
    jobs = overhead.sandbox_jobs("http://unused", [])
    jobs.append(overhead.Job("batch", "edge-deployment-other", 0, 1e12, T0.timestamp()))  # another DAG's
    stats = overhead.run_stats(FakeStack(), "fruit_features", "run-0", jobs, [])
    assert stats.wall_s == pytest.approx(220)
    assert stats.job_s == pytest.approx(70 + 40)  # ran: batch 30→100, step 160→200
    assert len(stats.jobs) == 2  # the cluster's provisioning is no job that ran
    # held: batch 0→100, cluster 90→150, step 150→200: one interval 0→200
    assert stats.aws_s == pytest.approx(200)
    assert stats.overhead == pytest.approx(110 / 220)
    assert stats.airflow_share == pytest.approx(20 / 220)


def test_a_job_still_held_at_the_run_end_counts_to_the_end():
    start, end = T0.timestamp(), T0.timestamp() + 50
    queued = overhead.Job("batch", "fruit-features-x", None, None, start + 40)
    assert overhead.held_intervals([queued], start, end) == [(start + 40, end)]
