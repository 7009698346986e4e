"""Job output into CloudWatch Logs, in the groups and streams AWS uses, as the job prints it."""

from __future__ import annotations

import threading
import time

from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.models import logs_backends

# The groups AWS writes each service's container output to.
BATCH_GROUP = "/aws/batch/job"
TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_GROUP = "/aws/sagemaker/ProcessingJobs"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"


class LogStream:
    """A CloudWatch log stream that job lines are appended to (thread-safe)."""

    def __init__(self, account_id: str, region: str, group: str, stream: str):
        self.group, self.stream = group, stream
        self._backend = logs_backends[account_id][region]
        self._lock = threading.Lock()
        self._backend.ensure_log_group(group)
        self._backend.ensure_log_stream(group, stream)

    def write(self, line: str) -> None:
        event = {"timestamp": int(time.time() * 1000), "message": line.rstrip("\n")}
        with self._lock:
            try:
                self._backend.put_log_events(self.group, self.stream, [event])
            except ResourceNotFoundException:
                pass  # the sandbox was reset (or the group deleted) under a job still printing
