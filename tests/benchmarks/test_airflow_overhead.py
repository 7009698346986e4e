"""benchmarks/airflow_overhead.py counts a SageMaker endpoint's own work (creation, async answers) as AWS time,
from what ListEndpoints, DescribeEndpoint(Config) and S3 say: fixed data, no stack."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

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
