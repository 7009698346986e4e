"""Deferrable wait on a SageMaker Neo compilation job (orchard's `compilation_job_complete` waiter).

With `end_in_trigger` a COMPLETED job ends the task here (`orchard.triggers.task_end`, issue 17.1): the
operator's resume would only describe the job and push `compilation_result` (its return value, and its
`job_name` / `model_artifacts` keys that downstream tasks read); the trigger makes the same describe (in a
thread, the operator's sync client) and pushes the same values before it yields a `TaskSuccessEvent`. A
FAILED or STOPPED job, the wait's error or timeout, a describe or push that fails: the task resumes, and
its operator words the outcome (InputError for Neo's ClientError).
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.triggers.base import TriggerEvent

from orchard.compat import AwsBaseWaiterTrigger
from orchard.hooks.neo import NeoHook
from orchard.triggers.task_end import EndsTaskOnSuccess


class NeoCompilationTrigger(EndsTaskOnSuccess, AwsBaseWaiterTrigger):
    """Polls DescribeCompilationJob until COMPLETED (success) or FAILED / STOPPED (failure, with its reason);
    with `end_in_trigger` a COMPLETED job ends the task (`target` and `compiler_options` are the operator's,
    for its return value)."""

    aws_hook_class = NeoHook

    def __init__(
        self,
        job_name: str,
        waiter_delay: int,
        waiter_max_attempts: int,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        end_in_trigger: bool = False,
        target: str = "",
        compiler_options: str = "",
        **kwargs,
    ):
        super().__init__(
            serialized_fields={
                "job_name": job_name,
                "end_in_trigger": bool(end_in_trigger),
                "target": target,
                "compiler_options": compiler_options,
            },
            waiter_name="compilation_job_complete",
            waiter_args={"CompilationJobName": job_name},
            failure_message=f"Neo compilation job {job_name} did not complete",
            status_message=f"Neo compilation job {job_name} is still running",
            status_queries=["CompilationJobStatus", "FailureReason"],
            return_key="job_name",
            return_value=job_name,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            **kwargs,
        )
        self.job_name = job_name
        self.end_in_trigger = bool(end_in_trigger)
        self.target, self.compiler_options = target, compiler_options

    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        """What the resume pushes for a COMPLETED job; raises (the resume words it) for any other."""
        from orchard.operators.neo import compilation_result, compilation_xcoms

        job = self.hook().describe(self.job_name)
        if job is None:
            raise LookupError(
                f"Neo compilation job {self.job_name}: DescribeCompilationJob found no such job"
            )
        return compilation_xcoms(compilation_result(job, self.target, self.compiler_options))

    async def on_kill(self) -> None:
        """A person acted on the deferred task (mark failed / success, clear): stop the compilation."""
        from orchard.operators.neo import stop_compilation

        stopped = await asyncio.to_thread(stop_compilation, self.hook().conn, self.job_name)
        self.log.info("Neo compilation job %s %s", self.job_name, "stopped" if stopped else "was not running")
