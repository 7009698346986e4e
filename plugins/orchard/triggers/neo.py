"""Deferrable wait on a SageMaker Neo compilation job (orchard's `compilation_job_complete` waiter)."""

from __future__ import annotations

from orchard.compat import AwsBaseWaiterTrigger
from orchard.hooks.neo import NeoHook


class NeoCompilationTrigger(AwsBaseWaiterTrigger):
    """Polls DescribeCompilationJob until COMPLETED (success) or FAILED / STOPPED (failure, with its reason)."""

    aws_hook_class = NeoHook

    def __init__(
        self,
        job_name: str,
        waiter_delay: int,
        waiter_max_attempts: int,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs,
    ):
        super().__init__(
            serialized_fields={"job_name": job_name},
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

    async def on_kill(self) -> None:
        """A person acted on the deferred task (mark failed / success, clear): stop the compilation."""
        import asyncio

        from orchard.operators.neo import stop_compilation

        stopped = await asyncio.to_thread(stop_compilation, self.hook().conn, self.job_name)
        self.log.info("Neo compilation job %s %s", self.job_name, "stopped" if stopped else "was not running")
