"""BatchOperator that reattaches to its job on a task retry instead of submitting a second one.

The provider's BatchOperator submits on every try. When a worker dies while the job runs (or the
trigger's wait times out), the retry would start a second GPU job for the same run. Job names come
from `orchard.naming` (dag_id + run_id), so the retry can find the job it started: any job of that
name in the queue that has not FAILED (still queued, running, or already SUCCEEDED) is the one to
wait on; otherwise it submits.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.links.batch import BatchJobDetailsLink
from airflow.providers.amazon.aws.operators.batch import BatchOperator

FAILED = "FAILED"


class ReattachingBatchOperator(BatchOperator):
    """`BatchOperator` whose `submit_job` first looks for this run's job by its deterministic name.

    `poll_interval` and `max_retries` (the trigger's delay and attempts) are templated too, so a DAG
    can size the wait from its params (the job's max runtime, a poll delay the sandbox keeps short).
    """

    template_fields = (*BatchOperator.template_fields, "poll_interval", "max_retries")

    def execute(self, context: Any) -> str | None:
        self.poll_interval = int(self.poll_interval)
        self.max_retries = int(self.max_retries)
        return super().execute(context)

    def submit_job(self, context: Any) -> None:
        existing = self.find_live_job()
        if existing is None:
            super().submit_job(context)
            return
        self.job_id = existing["jobId"]
        self.log.info(
            "AWS Batch job %s (%s) of this run is %s: reattaching to it instead of submitting another",
            self.job_name, self.job_id, existing["status"],
        )
        BatchJobDetailsLink.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            job_id=self.job_id,
        )

    def find_live_job(self) -> dict[str, Any] | None:
        """The newest job named `job_name` in `job_queue` that is not FAILED, if any.

        With a JOB_NAME filter ListJobs returns jobs in every status (AWS keeps them about 7 days).
        """
        paginator = self.hook.client.get_paginator("list_jobs")
        pages = paginator.paginate(
            jobQueue=self.job_queue, filters=[{"name": "JOB_NAME", "values": [self.job_name]}]
        )
        jobs = [job for page in pages for job in page.get("jobSummaryList", []) if job["jobName"] == self.job_name]
        live = [job for job in jobs if job.get("status") != FAILED]
        return max(live, key=lambda job: job.get("createdAt", 0)) if live else None
