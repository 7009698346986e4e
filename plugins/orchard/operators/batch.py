"""BatchOperator for paid GPU jobs: reattaches on a retry, fails fast and finally where AWS says so.

- **Reattach.** The provider's BatchOperator submits on every try. When a worker dies while the job runs
  (or the trigger's wait times out), the retry would start a second GPU job for the same run. Job names
  come from `orchard.naming` (dag_id + run_id), so the retry can find the job it started: any job of that
  name in the queue that has not FAILED (still queued, running, or already SUCCEEDED) is the one to wait
  on; otherwise it submits.
- **Wait** with `orchard.triggers.batch.BatchJobWaitTrigger`: a job id DescribeJobs no longer returns fails
  within `VANISHED_POLLS` polls, naming the job (the provider's waiter polls an empty answer for hours).
  With `awslogs_enabled` the trigger logs the job's CloudWatch lines while it waits (live in the task log),
  and the provider's print of the whole log at the end is skipped. A SUCCEEDED job ends the task in the
  triggerer (`end_in_trigger`): the resume would only return the job id and persist the CloudWatch link,
  which the trigger pushes as the same XComs, so no worker process starts for it (issue 17.1).
- **Input errors are final.** Job code exits `orchard.errors.INPUT_ERROR_EXIT_CODE` (65) on bad input; the
  job definition's retryStrategy EXITs on it (no second Batch attempt) and this operator raises
  `InputError` (no Airflow retry), naming `input_uri` and the job's own reason line.
- **Kill.** Airflow 3 calls `on_kill` on SIGTERM to the task process, which comes both from a worker's
  graceful shutdown (the supervisor forwards the SIGTERM it received) and from a person's "mark failed" /
  "stop run" (the API server answers the heartbeat 409, the supervisor sends SIGTERM). `on_kill` asks the
  API server for this task instance's state: still `running` means the worker is shutting down, and the paid
  job is left running for the retry to reattach; any other state (failed, success, ... set by a person) means
  the person ended the task, and the job is terminated. (While the task is deferred there is no task process:
  the DAG's teardown terminates the run's job when the run ends failed.)
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.links.batch import BatchJobDetailsLink
from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk.exceptions import AirflowException

from orchard.errors import INPUT_ERROR_EXIT_CODE, InputError
from orchard.operators.stop_requests import ended_by_a_person
from orchard.triggers.task_end import may_end_in_trigger

FAILED = "FAILED"
SUCCEEDED = "SUCCEEDED"


class ReattachingBatchOperator(BatchOperator):
    """`BatchOperator` whose `submit_job` first looks for this run's job by its deterministic name.

    `poll_interval` and `max_retries` (the trigger's delay and attempts) are templated too, so a DAG
    can size the wait from its params (the job's max runtime, a poll delay the sandbox keeps short).
    `input_uri` names the user's input (an S3 URI) in the InputError of a job that refused it.
    """

    template_fields = (*BatchOperator.template_fields, "poll_interval", "max_retries", "input_uri")

    def __init__(self, *, input_uri: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.input_uri = input_uri
        self._ti: Any = None

    def execute(self, context: Any) -> str | None:
        self.poll_interval = int(self.poll_interval)
        self.max_retries = int(self.max_retries)
        self._ti = context.get("ti")
        if not self.deferrable:
            return super().execute(context)
        from orchard.triggers.batch import BatchJobWaitTrigger

        self.submit_job(context)
        job = self._persist_links(context)
        status = job.get("status")
        if status == SUCCEEDED:
            self._persist_cloudwatch_link(context)
            self.log.info("AWS Batch job %s already SUCCEEDED", self.job_id)
            return self.job_id
        if status == FAILED:
            self._raise_failure(self._describe() or job)
        self.defer(
            timeout=self.execution_timeout,
            trigger=BatchJobWaitTrigger(
                job_id=self.job_id,
                job_name=self.job_name,
                waiter_delay=self.poll_interval,
                waiter_max_attempts=self.max_retries,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                stream_logs=self.awslogs_enabled,
                end_in_trigger=may_end_in_trigger(self),
                cloudwatch_link=self._cloudwatch_link_base(),
            ),
            method_name="execute_complete",
        )
        return None  # not reached: defer raises

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        event = event or {}
        if event.get("log_printed"):
            # The trigger logged the job's lines while it waited: the provider's end-of-job print
            # (awslogs_enabled) would repeat them in the same task log.
            self.awslogs_enabled = False
        if event.get("status") == "success":
            return super().execute_complete(context, event)
        try:
            super().execute_complete(context, event)  # prints the job's log (unless streamed), then raises
        except AirflowException:
            pass
        if event.get("reason") == "failed":
            self._raise_failure(
                self._describe()
                or {
                    "jobId": event.get("job_id"),
                    "status": FAILED,
                    "statusReason": event.get("status_reason", ""),
                    "container": {"exitCode": event.get("exit_code")},
                }
            )
        raise AirflowException(
            event.get("message") or f"AWS Batch job {self.job_id} did not succeed: {event}"
        )

    def _cloudwatch_link_base(self) -> dict[str, str]:
        """What the provider's CloudWatchEventsLink XCom holds besides the log stream (BaseAwsLink.persist)."""
        from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

        return {
            "region_name": self.hook.conn_region_name,
            "aws_domain": CloudWatchEventsLink.get_aws_domain(self.hook.conn_partition),
        }

    def _describe(self) -> dict[str, Any] | None:
        jobs = self.hook.client.describe_jobs(jobs=[self.job_id]).get("jobs", [])
        return jobs[0] if jobs else None

    def _raise_failure(self, job: dict[str, Any]) -> None:
        from orchard.triggers.batch import exit_code_of

        code, reason = exit_code_of(job), job.get("statusReason", "no reason given")
        named = f"AWS Batch job {self.job_name} ({self.job_id})"
        if code == INPUT_ERROR_EXIT_CODE:
            detail = self._input_error_line() or reason
            raise InputError(
                f"{named} refused its input {self.input_uri or ''} (exit {code}, an input error: Batch and "
                f"Airflow do not retry it): {detail}. Fix the input and upload it again"
            )
        raise AirflowException(f"{named} FAILED (exit code {code}): {reason}")

    def _input_error_line(self) -> str:
        """The job's own explanation: the last line of its log that says it failed on its input."""
        try:
            fetcher = self._get_batch_log_fetcher(self.job_id)
            messages = fetcher.get_last_log_messages(200) if fetcher else []
        except Exception:  # the log is a courtesy: the exit code already decided
            return ""
        lines = [m for m in messages if f"(exit {INPUT_ERROR_EXIT_CODE})" in m]
        return lines[-1].strip() if lines else ""

    def on_kill(self) -> None:
        if not self.job_id:
            self.log.info("on_kill: no AWS Batch job submitted yet: nothing to terminate")
            return
        if not ended_by_a_person(self._ti, self.log):
            self.log.warning(
                "on_kill: not a person's action (a worker's shutdown, or the state is unknown): AWS Batch "
                "job %s is left running; the retry reattaches to it, the run's teardown terminates it if "
                "the run fails",
                self.job_id,
            )
            return
        self.log.info("on_kill: the task was ended by a person: terminating AWS Batch job %s", self.job_id)
        self.hook.client.terminate_job(jobId=self.job_id, reason="Airflow task ended by a person")

    def submit_job(self, context: Any) -> None:
        existing = self.find_live_job()
        if existing is None:
            super().submit_job(context)
            return
        self.job_id = existing["jobId"]
        self.log.info(
            "AWS Batch job %s (%s) of this run is %s: reattaching to it instead of submitting another",
            self.job_name,
            self.job_id,
            existing["status"],
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
        jobs = [
            job for page in pages for job in page.get("jobSummaryList", []) if job["jobName"] == self.job_name
        ]
        live = [job for job in jobs if job.get("status") != FAILED]
        return max(live, key=lambda job: job.get("createdAt", 0)) if live else None
