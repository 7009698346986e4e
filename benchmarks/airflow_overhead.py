"""Airflow's share of each pipeline run on the local stack (issue 17.1): what a run costs beyond its jobs.

    .venv/bin/python benchmarks/airflow_overhead.py [--dags edge_deployment fruit_features] [--load 2]
        [--baseline] [--sandbox-port 0] [--port 0] [--json out.json]

Runs `make demo`'s flow (`local_aws.stack.run_demo`) for the DAGs asked for (default: all) and, per run:

* wall: the DAG run's start → end (Airflow's REST API);
* jobs: the time its AWS jobs ran, from the sandbox's own job descriptions read through the AWS APIs
  (Batch DescribeJobs startedAt/stoppedAt, SageMaker Describe{Training,Processing,Compilation,Labeling}Job
  start/end times, EMR ListSteps' Status.Timeline, IoT DescribeJob createdAt/completedAt), a job counted
  for the DAG whose id starts its deterministic name (`orchard.naming`), overlapping jobs counted once;
  and a SageMaker endpoint's own work, which has no job description (`EndpointWatch`): its creation,
  CreationTime → the LastModifiedTime at which it left Creating (ListEndpoints, sampled every second
  because the run deletes its endpoint), and, for an async endpoint, the stretches in which it kept
  writing answers (the LastModified of the objects under its AsyncInferenceConfig S3OutputPath and
  S3FailurePath, listed after the run);
* overhead % = (wall − jobs) / wall (target ≤ 15 %): the issue's definition, the headline;
* AWS s: the union of the intervals in which AWS held the run's jobs and resources, from each one's creation
  or submission to its end, overlapping ones once. Beside the time a job ran, that is the time AWS keeps a
  job before it runs (Batch SUBMITTED/PENDING/RUNNABLE/STARTING, a SageMaker job's Starting/Downloading, an
  EMR step PENDING) and an EMR cluster's provisioning (STARTING, BOOTSTRAPPING): minutes on AWS that no
  orchestrator can shorten. The fields, from the AWS API reference:
  - Batch JobDetail createdAt ("when the job entered the SUBMITTED state", ms) → stoppedAt
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_JobDetail.html);
  - SageMaker CreationTime → TrainingEndTime / ProcessingEndTime / CompilationEndTime / LastModifiedTime
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html,
    .../API_DescribeProcessingJob.html, .../API_DescribeCompilationJob.html, .../API_DescribeLabelingJob.html);
  - EMR StepTimeline CreationDateTime → EndDateTime
    (https://docs.aws.amazon.com/emr/latest/APIReference/API_StepTimeline.html), and a cluster's
    ClusterTimeline CreationDateTime → ReadyDateTime ("ready to run steps"; EndDateTime for one that ended
    before, https://docs.aws.amazon.com/emr/latest/APIReference/API_ClusterTimeline.html), from ListClusters'
    ClusterSummary: the cluster's idle WAITING between steps is not AWS's;
  - IoT Job createdAt → completedAt (https://docs.aws.amazon.com/iot/latest/apireference/API_Job.html);
  - an endpoint's creation and answering, as for jobs.
  A job or resource with no end yet counts to the run's end. A job whose creation time the sandbox does not
  return is named under "not read" (the sandbox would lack a field AWS returns);
* Airflow % = (wall − AWS s) / wall: what remains once AWS's own queueing and provisioning are AWS's;
* where the rest goes, from a sample of the run's task instances every second: seconds with a task running
  and no job ("task": Python work on the critical path, process starts), with nothing running and no job
  ("sched": scheduling, queueing, deferred tasks finishing after their job ended), and the top tasks by
  running seconds outside jobs;
* queue: median of a task's start − queued time;
* slots held while a job runs: task-seconds in state `running` while one of the run's jobs ran (a
  deferred task holds no worker slot), and the deferred share of those samples.

`--load N` runs N CPU-bound processes (benchmarks/_cpu_load.py) for the whole demo: the demo under load of
issue 17.2. `--baseline` starts Airflow with the stack's settings before the tuning of issue 17 (execution
API timeout 5 s and 5 tries, every file re-parsed every 30 s, LocalExecutor workers forked from the scheduler with
nothing preloaded), so one script measures before and after.
The sampling costs one REST call per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

import _critical_path

from local_aws import sandbox_client
from local_aws.stack import demo as demo_mod
from local_aws.stack import processes

# Airflow's and the stack's values before issue 17's tuning (local_aws/stack/environment.py says why each)
BASELINE_ENV = {
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "5.0",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "5",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "90.0",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
    # workers forked from the scheduler (Python 3.11's default), nothing preloaded
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "fork",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "",
}


@dataclass
class Job:
    kind: str
    name: str
    start: float | None  # epoch seconds: when it started running (None: never ran, or a resource)
    end: float | None
    created: float | None = None  # when AWS took it (submission, creation); None: `start`

    @property
    def held_from(self) -> float | None:
        """Start of the interval in which AWS held it: its creation, else its start."""
        return self.created if self.created is not None else self.start


@dataclass
class Sample:
    t: float
    states: dict[tuple[str, str, str], str]  # (dag_id, run_id, task_id[/map_index]) → state


@dataclass
class RunStats:
    dag_id: str
    run_id: str
    state: str
    wall_s: float = 0.0
    job_s: float = 0.0
    jobs: list[Job] = field(default_factory=list)
    aws_s: float = 0.0  # the union of the intervals in which AWS held the run's jobs and resources
    held: list[Job] = field(default_factory=list)  # those jobs and resources (EMR clusters' provisioning)
    task_s: float = 0.0
    sched_s: float = 0.0
    queue_s: float | None = None
    slot_s: float = 0.0
    deferred_share: float | None = None
    top_tasks: list[tuple[str, float]] = field(default_factory=list)
    critical: dict = field(default_factory=dict)  # benchmarks/_critical_path.py's breakdown

    @property
    def overhead(self) -> float:
        return (self.wall_s - self.job_s) / self.wall_s if self.wall_s else 0.0

    @property
    def airflow_share(self) -> float:
        """What remains of the wall once AWS's queueing and provisioning count as AWS's too."""
        return (self.wall_s - self.aws_s) / self.wall_s if self.wall_s else 0.0


def _epoch(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)  # Batch and IoT: ms; others: datetime
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value.timestamp()


def _pages(call, key: str, **kwargs):
    token_key = "NextToken" if "nextToken" not in kwargs else "nextToken"
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        token = page.get("NextToken") or page.get("nextToken") or page.get("Marker")
        if not token:
            return
        kwargs["Marker" if "Marker" in page else token_key] = token


def sandbox_jobs(url: str, notes: list[str]) -> list[Job]:
    """Every job the sandbox knows, with the start and end its service's Describe call reports."""
    jobs: list[Job] = []

    def guarded(kind, collect):
        try:
            collect()
        except Exception as err:  # a service the run did not use, or an API the sandbox lacks
            notes.append(f"{kind}: {type(err).__name__}: {str(err)[:120]}")

    def batch():
        client = sandbox_client("batch", url)
        for queue in client.describe_job_queues().get("jobQueues", []):
            ids = []
            for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
                ids += [
                    j["jobId"]
                    for j in _pages(
                        client.list_jobs, "jobSummaryList", jobQueue=queue["jobQueueName"], jobStatus=status
                    )
                ]
            for i in range(0, len(ids), 100):
                for job in client.describe_jobs(jobs=ids[i : i + 100])["jobs"]:
                    jobs.append(
                        Job(
                            "batch",
                            job["jobName"],
                            _epoch(job.get("startedAt")),
                            _epoch(job.get("stoppedAt")),
                            _epoch(job.get("createdAt")),
                        )
                    )

    def sagemaker():
        sm = sandbox_client("sagemaker", url)
        kinds = (
            (
                "training",
                sm.list_training_jobs,
                "TrainingJobSummaries",
                "TrainingJobName",
                sm.describe_training_job,
                "TrainingStartTime",
                "TrainingEndTime",
            ),
            (
                "processing",
                sm.list_processing_jobs,
                "ProcessingJobSummaries",
                "ProcessingJobName",
                sm.describe_processing_job,
                "ProcessingStartTime",
                "ProcessingEndTime",
            ),
            (
                "compilation",
                sm.list_compilation_jobs,
                "CompilationJobSummaries",
                "CompilationJobName",
                sm.describe_compilation_job,
                "CompilationStartTime",
                "CompilationEndTime",
            ),
            (
                "labeling",
                sm.list_labeling_jobs,
                "LabelingJobSummaryList",
                "LabelingJobName",
                sm.describe_labeling_job,
                "CreationTime",
                "LastModifiedTime",
            ),
        )
        for kind, lister, key, name_key, describe, start_key, end_key in kinds:

            def collect(
                lister=lister,
                key=key,
                name_key=name_key,
                describe=describe,
                start_key=start_key,
                end_key=end_key,
                kind=kind,
            ):
                for summary in _pages(lister, key):
                    name = summary[name_key]
                    desc = describe(**{name_key: name})
                    status = desc.get(f"{kind.capitalize()}JobStatus") or desc.get("LabelingJobStatus", "")
                    end = desc.get(end_key)
                    if kind == "labeling" and status == "InProgress":
                        end = None
                    created = _epoch(desc.get("CreationTime"))
                    jobs.append(Job(kind, name, _epoch(desc.get(start_key)), _epoch(end), created))

            guarded(f"sagemaker {kind}", collect)

    def emr():
        client = sandbox_client("emr", url)
        for cluster in _pages(client.list_clusters, "Clusters"):
            jobs.append(cluster_provisioning(cluster))
            for step in _pages(client.list_steps, "Steps", ClusterId=cluster["Id"]):
                timeline = step.get("Status", {}).get("Timeline", {})
                jobs.append(
                    Job(
                        "emr step",
                        f"{cluster['Name']}/{step['Name']}",
                        _epoch(timeline.get("StartDateTime")),
                        _epoch(timeline.get("EndDateTime")),
                        _epoch(timeline.get("CreationDateTime")),
                    )
                )

    def iot():
        client = sandbox_client("iot", url)
        for summary in _pages(client.list_jobs, "jobs"):
            job = client.describe_job(jobId=summary["jobId"])["job"]
            created = _epoch(job.get("createdAt"))
            jobs.append(Job("iot", job["jobId"], created, _epoch(job.get("completedAt")), created))

    guarded("batch", batch)
    sagemaker()
    guarded("emr", emr)
    guarded("iot", iot)
    notes += [f"{j.kind} {j.name}: no creation time" for j in jobs if j.created is None]
    return jobs


def cluster_provisioning(cluster: dict) -> Job:
    """An EMR cluster while AWS provisions it (STARTING, BOOTSTRAPPING): ClusterSummary's Status.Timeline
    CreationDateTime → ReadyDateTime, or → EndDateTime for a cluster that ended before it was ready. Not a
    job that ran (no start): it counts in "AWS s" only."""
    timeline = cluster.get("Status", {}).get("Timeline", {})
    ready = timeline.get("ReadyDateTime") or timeline.get("EndDateTime")
    return Job("emr cluster", cluster["Name"], None, _epoch(ready), _epoch(timeline.get("CreationDateTime")))


# A silence between two answers of an async endpoint longer than this is an idle endpoint, not one long
# inference: the demo's models answer a frame in well under a second.
ANSWER_GAP_S = 30.0


@dataclass
class WatchedEndpoint:
    name: str
    created: float  # CreationTime (epoch s)
    ready: float | None = None  # LastModifiedTime when first seen out of Creating (InService or Failed)
    answer_paths: list[str] = field(default_factory=list)  # S3OutputPath, S3FailurePath (async only)


def answer_stretches(times: list[float], gap_s: float = ANSWER_GAP_S) -> list[tuple[float, float]]:
    """The stretches in which an async endpoint kept answering: consecutive answer times (S3 LastModified of
    its output or failure objects) at most `gap_s` apart. Each answer is AWS's work on the request before it
    (the endpoint works through its backlog); the first answer's own inference is not counted."""
    stretches: list[list[float]] = []
    for t in sorted(times):
        if stretches and t - stretches[-1][1] <= gap_s:
            stretches[-1][1] = t
        else:
            stretches.append([t, t])
    return [(a, b) for a, b in stretches if b > a]


def endpoint_jobs(endpoint: WatchedEndpoint, answer_times: list[float]) -> list[Job]:
    """An endpoint's creation and its answering stretches, as jobs named by the endpoint (owned_by)."""
    jobs = []
    if endpoint.ready is not None:
        jobs.append(Job("endpoint creation", endpoint.name, endpoint.created, endpoint.ready))
    after_creation = [t for t in answer_times if t >= endpoint.created]
    jobs += [Job("async inference", endpoint.name, a, b) for a, b in answer_stretches(after_creation)]
    return jobs


class EndpointWatch(threading.Thread):
    """Every `period_s`: the sandbox's SageMaker endpoints, through the calls AWS answers, before the run
    deletes them. ListEndpoints' EndpointSummary has CreationTime, LastModifiedTime and EndpointStatus
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointSummary.html): the first time an
    endpoint is seen out of `Creating`, its LastModifiedTime is when creation ended (nothing else updates
    the endpoints of these runs before they are deleted). A new endpoint's DescribeEndpoint names its config,
    whose AsyncInferenceConfig.OutputConfig (DescribeEndpointConfig,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AsyncInferenceOutputConfig.html) says where
    AWS writes each answer: `answer_times` lists them after the run (ListObjectsV2 LastModified)."""

    def __init__(self, url: str, period_s: float = 1.0):
        super().__init__(daemon=True)
        self.url, self.period_s = url, period_s
        self.endpoints: dict[str, WatchedEndpoint] = {}
        self.notes: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        sm = sandbox_client("sagemaker", self.url)
        while not self.stopped.is_set():
            t = time.time()
            try:
                self.observe(sm)
            except Exception as err:  # a sandbox busy or stopping: the next sample sees it again
                self.notes = [*self.notes[-4:], f"endpoints: {type(err).__name__}: {str(err)[:120]}"]
            self.stopped.wait(max(0.0, self.period_s - (time.time() - t)))

    def observe(self, sm) -> None:
        for summary in _pages(sm.list_endpoints, "Endpoints"):
            name, status = summary["EndpointName"], summary["EndpointStatus"]
            endpoint = self.endpoints.get(name)
            if endpoint is None:
                endpoint = self.endpoints[name] = WatchedEndpoint(name, _epoch(summary["CreationTime"]))
                endpoint.answer_paths = async_answer_paths(sm, name)
            if endpoint.ready is None and status in ("InService", "Failed"):
                endpoint.ready = _epoch(summary["LastModifiedTime"])

    def answer_times(self, endpoint: WatchedEndpoint) -> list[float]:
        s3 = sandbox_client("s3", self.url)
        times: list[float] = []
        for path in dict.fromkeys(endpoint.answer_paths):
            bucket, _, prefix = path.removeprefix("s3://").partition("/")
            prefix = prefix.rstrip("/") + "/"
            for obj in _pages(s3.list_objects_v2, "Contents", Bucket=bucket, Prefix=prefix):
                times.append(_epoch(obj["LastModified"]))
        return times

    def jobs(self, notes: list[str]) -> list[Job]:
        jobs: list[Job] = []
        for endpoint in self.endpoints.values():
            try:
                jobs += endpoint_jobs(endpoint, self.answer_times(endpoint))
            except Exception as err:
                notes.append(f"endpoint {endpoint.name}: {type(err).__name__}: {str(err)[:120]}")
        return jobs


def async_answer_paths(sm, endpoint_name: str) -> list[str]:
    """S3OutputPath and S3FailurePath of the endpoint's config; none for a real-time endpoint."""
    config_name = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    output = config.get("AsyncInferenceConfig", {}).get("OutputConfig", {})
    return [path for path in (output.get("S3OutputPath"), output.get("S3FailurePath")) if path]


def owned_by(job: Job, dag_id: str) -> bool:
    """A job's deterministic name starts with its DAG id, sanitised for the service (orchard.naming)."""
    name = job.name.lower().replace("_", "-")
    return name.startswith(dag_id.lower().replace("_", "-"))


def union_s(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def clipped(spans: list[tuple[float, float | None]], start: float, end: float) -> list[tuple[float, float]]:
    """The spans inside the run's start → end; a span with no end yet lasts to the run's end."""
    inside = [(max(a, start), min(b or end, end)) for a, b in spans]
    return [(a, b) for a, b in inside if b > a]


def held_intervals(jobs: list[Job], start: float, end: float) -> list[tuple[float, float]]:
    """The intervals in which AWS held these jobs and resources (creation → end), inside the run."""
    return clipped([(j.held_from, j.end) for j in jobs if j.held_from is not None], start, end)


def in_any(t: float, intervals: list[tuple[float, float]]) -> bool:
    return any(start <= t < stop for start, stop in intervals)


class Sampler(threading.Thread):
    """Every `period_s`: the state of every task instance that is not finished, across all runs."""

    def __init__(self, stack, period_s: float = 1.0):
        super().__init__(daemon=True)
        self.stack, self.period_s = stack, period_s
        self.samples: list[Sample] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        query = "&".join(f"state={s}" for s in ("running", "deferred", "queued", "scheduled", "up_for_retry"))
        while not self.stopped.is_set():
            t = time.time()
            try:
                tis = self.stack.api("GET", f"/dags/~/dagRuns/~/taskInstances?{query}&limit=1000")
            except Exception:
                tis = None
            if tis is not None:
                states = {}
                for ti in tis.get("task_instances", []):
                    task = ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
                    states[(ti["dag_id"], ti["dag_run_id"], task)] = ti["state"]
                self.samples.append(Sample(t, states))
            self.stopped.wait(max(0.0, self.period_s - (time.time() - t)))


def run_stats(stack, dag_id: str, run_id: str, jobs: list[Job], samples: list[Sample]) -> RunStats:
    from urllib.parse import quote

    run = stack.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
    stats = RunStats(dag_id, run_id, run["state"])
    start, end = _epoch(run.get("start_date")), _epoch(run.get("end_date")) or time.time()
    if start is None:
        return stats
    stats.wall_s = end - start
    owned = [j for j in jobs if owned_by(j, dag_id)]
    mine = [j for j in owned if j.start is not None]
    stats.jobs = mine
    intervals = clipped([(j.start, j.end) for j in mine], start, end)
    stats.job_s = union_s(intervals)
    stats.held = [j for j in owned if j.held_from is not None]
    stats.aws_s = union_s(held_intervals(stats.held, start, end))

    def job_seconds(a: float, b: float) -> float:
        return union_s([(max(x, a), min(y, b)) for x, y in intervals if min(y, b) > max(x, a)])

    try:
        stats.critical = _critical_path.breakdown(stack, dag_id, run_id, job_seconds)
    except Exception as err:  # a figure the table can go without
        stats.critical = {"error": f"{type(err).__name__}: {err}"}
    tis = stack.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000")
    waits = [
        _epoch(ti["start_date"]) - _epoch(ti["queued_when"])
        for ti in tis.get("task_instances", [])
        if ti.get("queued_when")
        and ti.get("start_date")
        and _epoch(ti["start_date"]) >= _epoch(ti["queued_when"])
    ]
    stats.queue_s = statistics.median(waits) if waits else None
    period = statistics.median([b.t - a.t for a, b in zip(samples, samples[1:])]) if len(samples) > 1 else 1.0
    outside: dict[str, float] = {}
    running_in_job = deferred_in_job = 0
    for sample in samples:
        if not start <= sample.t < end:
            continue
        states = {task: s for (d, r, task), s in sample.states.items() if d == dag_id and r == run_id}
        running = [task for task, s in states.items() if s == "running"]
        if in_any(sample.t, intervals):
            running_in_job += len(running)
            deferred_in_job += sum(s == "deferred" for s in states.values())
        elif running:
            stats.task_s += period
            for task in running:
                outside[task] = outside.get(task, 0.0) + period
        else:
            stats.sched_s += period
    stats.slot_s = running_in_job * period
    waiting = running_in_job + deferred_in_job
    stats.deferred_share = deferred_in_job / waiting if waiting else None
    stats.top_tasks = sorted(outside.items(), key=lambda kv: -kv[1])[:3]
    return stats


def table(rows: list[RunStats]) -> str:
    head = (
        f"{'DAG':18} {'state':8} {'wall s':>7} {'jobs':>4} {'job s':>7} {'overhead':>8} {'AWS s':>7} "
        f"{'Airflow %':>9} {'task s':>7} {'sched s':>7} {'queue s':>7} {'slot-s':>6} {'deferred':>8}  "
        "top tasks outside jobs (s)"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        queue = "-" if r.queue_s is None else f"{r.queue_s:.1f}"
        deferred = "-" if r.deferred_share is None else f"{r.deferred_share:.0%}"
        top = ", ".join(f"{t} {s:.0f}" for t, s in r.top_tasks)
        lines.append(
            f"{r.dag_id:18} {r.state:8} {r.wall_s:7.0f} {len(r.jobs):4d} {r.job_s:7.0f} "
            f"{r.overhead:8.0%} {r.aws_s:7.0f} {r.airflow_share:9.0%} {r.task_s:7.0f} {r.sched_s:7.0f} "
            f"{queue:>7} {r.slot_s:6.0f} "
            f"{deferred:>8}  {top}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", nargs="*", default=None, help="DAG ids (default: all)")
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes running alongside (17.2)")
    parser.add_argument(
        "--baseline", action="store_true", help="the stack's settings before issue 17's tuning"
    )
    parser.add_argument("--sandbox-port", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    if args.baseline:
        original_env = processes.Stack.env

        def baseline_env(self):
            return {**original_env(self), **BASELINE_ENV}

        processes.Stack.env = baseline_env

    collected: dict = {}
    sampler_box: dict = {}

    def on_started(stack):
        sampler = Sampler(stack)
        sampler.start()
        sampler_box["sampler"] = sampler
        watch = EndpointWatch(stack.sandbox_url)
        watch.start()
        sampler_box["endpoints"] = watch

    def before_stop(stack, results):
        sampler = sampler_box.get("sampler")
        if sampler:
            sampler.stopped.set()
            sampler.join(timeout=10)
        notes: list[str] = []
        jobs = sandbox_jobs(stack.sandbox_url, notes)
        watch = sampler_box.get("endpoints")
        if watch:
            watch.stopped.set()
            watch.join(timeout=10)
            jobs += watch.jobs(notes)
            notes += watch.notes
        rows = []
        for dag_id, result in results.items():
            if result.run_id == "-":
                continue
            rows.append(run_stats(stack, dag_id, result.run_id, jobs, sampler.samples if sampler else []))
        collected.update(rows=rows, notes=notes)

    load = []
    if args.load:
        load = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "benchmarks" / "_cpu_load.py"),
                    "--seconds",
                    str(int(args.timeout)),
                ]
            )
            for _ in range(args.load)
        ]
    started = time.monotonic()
    try:
        code = demo_mod.run_demo(
            args.dags or None,
            timeout_s=args.timeout,
            sandbox_port=args.sandbox_port,
            api_port=args.port,
            on_started=on_started,
            before_stop=before_stop,
        )
    finally:
        for process in load:
            process.terminate()
            process.wait(timeout=10)
    rows: list[RunStats] = collected.get("rows", [])
    label = ("baseline" if args.baseline else "tuned") + (
        f", {args.load} CPU-load processes" if args.load else ""
    )
    print(f"\nairflow_overhead ({label}; {os.cpu_count()} cores; demo {time.monotonic() - started:.0f} s):")
    print(table(rows))
    for r in rows:
        if r.critical.get("steps"):
            print(_critical_path.render(r.dag_id, r.critical))
    if collected.get("notes"):
        print("not read: " + "; ".join(collected["notes"]))
    succeeded = sum(r.state == "success" for r in rows)
    print(
        f"runs succeeded: {succeeded}/{len(rows)}; overhead ≤ 15 %: "
        f"{sum(r.overhead <= 0.15 for r in rows)}/{len(rows)}; Airflow % ≤ 15 %: "
        f"{sum(r.airflow_share <= 0.15 for r in rows)}/{len(rows)}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "label": label,
                    "runs": [
                        {
                            "dag_id": r.dag_id,
                            "state": r.state,
                            "wall_s": r.wall_s,
                            "job_s": r.job_s,
                            "overhead": r.overhead,
                            "aws_s": r.aws_s,
                            "airflow_share": r.airflow_share,
                            "task_s": r.task_s,
                            "sched_s": r.sched_s,
                            "queue_s": r.queue_s,
                            "slot_s": r.slot_s,
                            "deferred_share": r.deferred_share,
                            "top_tasks": r.top_tasks,
                            "jobs": [vars(j) for j in r.jobs],
                            "aws_held": [vars(j) for j in r.held],
                            "critical_path": r.critical,
                        }
                        for r in rows
                    ],
                },
                indent=1,
            )
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
