"""A running training job's instance metrics in CloudWatch, under the names SageMaker publishes them.

AWS ("Amazon SageMaker AI metrics in Amazon CloudWatch", SageMaker AI job metrics,
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html): namespace
`/aws/sagemaker/TrainingJobs`, dimension `Host` = `<training job name>/algo-<instance number>`, at a 1-minute
frequency while the job runs, among them
- CPUUtilization: the sum of each CPU core's utilization, each 0-100 (4 cores: 0-400 %), Percent;
- MemoryUtilization: the percentage of memory used by the containers on the instance, 0-100 %, Percent;
- GPUUtilization / GPUMemoryUtilization: per GPU summed, like CPUUtilization.

Here the "instance" is the job's processes on this machine (found by the TRAINING_JOB_NAME their
environment carries, children included, read from /proc: no psutil in the sandbox's environment). CPU and
memory are measured and published; the sandbox has no GPU, so it publishes no GPU metric (a report must
cope with their absence, as it must on a CPU instance). The processes are sampled every second and a
point (the mean) is put every `SAMPLE_PERIOD_S` seconds (ORCHARD_INSTANCE_METRICS_PERIOD_S; AWS: 60 s) and
when they end, so that the short jobs of the demo have points too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow

log = logging.getLogger(__name__)

NAMESPACE = "/aws/sagemaker/TrainingJobs"
SAMPLE_PERIOD_S = float(os.environ.get("ORCHARD_INSTANCE_METRICS_PERIOD_S", "5"))
PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def host_dimension(job_name: str, host: str = "algo-1") -> list[dict[str, str]]:
    return [{"Name": "Host", "Value": f"{job_name}/{host}"}]


def job_processes(job_name: str, proc: Path = PROC) -> list[int]:
    """The pids whose environment says TRAINING_JOB_NAME=<job_name> (the job's process and its children)."""
    marker = f"TRAINING_JOB_NAME={job_name}".encode()
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def _cpu_seconds(pid: int, proc: Path) -> float:
    # /proc/<pid>/stat: utime and stime are fields 14 and 15, after the ")" that ends the command name.
    fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_bytes(pid: int, proc: Path) -> int:
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0  # a zombie has no VmRSS


def _mem_total_bytes(proc: Path) -> int:
    for line in (proc / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise OSError("no MemTotal in /proc/meminfo")


class Sampler:
    """CPU (summed over cores, as AWS) and memory utilization of a job's processes between two calls."""

    def __init__(self, job_name: str, proc: Path = PROC, clock: Callable[[], float] | None = None):
        import time

        self.job_name, self.proc, self.clock = job_name, proc, clock or time.monotonic
        self._cpu: dict[int, float] = {}
        self._at = self.clock()

    def sample(self) -> dict[str, float] | None:
        """{"CPUUtilization": %, "MemoryUtilization": %} since the last call; None when no process runs."""
        now, cpu, rss = self.clock(), {}, 0
        for pid in job_processes(self.job_name, self.proc):
            try:
                cpu[pid] = _cpu_seconds(pid, self.proc)
                rss += _rss_bytes(pid, self.proc)
            except (OSError, IndexError, ValueError):
                continue
        elapsed, before = now - self._at, self._cpu
        self._cpu, self._at = cpu, now
        if not cpu:
            return None
        used = sum(seconds - before.get(pid, 0.0) for pid, seconds in cpu.items())
        return {
            "CPUUtilization": round(100.0 * max(used, 0.0) / max(elapsed, 1e-6), 3),  # summed over cores
            "MemoryUtilization": round(100.0 * rss / _mem_total_bytes(self.proc), 3),
        }


def put(account_id: str, region: str, job_name: str, values: dict[str, float], host: str = "algo-1") -> None:
    """One data point per metric, as SageMaker puts them (the sandbox stands for the service: no IAM)."""
    timestamp = utcnow()
    cloudwatch_backends[account_id][region].put_metric_data(
        NAMESPACE,
        [
            {
                "MetricName": name,
                "Value": value,
                "Unit": "Percent",
                "Timestamp": timestamp,
                "Dimensions": host_dimension(job_name, host),
            }
            for name, value in values.items()
        ],
    )


def publish_while(
    running: Callable[[], bool], account_id: str, region: str, job_name: str, period_s: float | None = None
) -> threading.Thread:
    """While `running()`: sample the job's processes every second and put the period's mean every period,
    and what is left when its processes end, so a job shorter than a period still has a point."""
    period = SAMPLE_PERIOD_S if period_s is None else period_s

    def loop() -> None:
        import time

        sampler, tick, samples, published = Sampler(job_name), threading.Event(), [], time.monotonic()
        while running():
            tick.wait(min(1.0, period))
            try:
                values = sampler.sample()
                if values:
                    samples.append(values)
                if samples and (values is None or time.monotonic() - published >= period):
                    put(
                        account_id,
                        region,
                        job_name,
                        {name: round(sum(v[name] for v in samples) / len(samples), 3) for name in samples[0]},
                    )
                    samples, published = [], time.monotonic()
            except Exception:  # metrics never fail the job
                log.exception("instance metrics of %s", job_name)

    thread = threading.Thread(target=loop, daemon=True, name=f"metrics-{job_name}")
    thread.start()
    return thread


def publish_for(job) -> threading.Thread:
    """publish_while for a sandbox training job (local_aws/sagemaker.py), until it leaves InProgress."""
    run = job._run
    in_progress = lambda: job.training_job_status == "InProgress"  # noqa: E731
    return publish_while(in_progress, run.account_id, run.region, run.name)
