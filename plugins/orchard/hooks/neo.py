"""SageMaker Neo compilation jobs: the provider's SageMaker hook has no compilation job calls or waiter."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

WAITERS = Path(__file__).resolve().parent.parent / "waiters"
TERMINAL = ("COMPLETED", "FAILED", "STOPPED")


class NeoHook(AwsBaseHook):
    """`sagemaker` client with orchard's `compilation_job_complete` waiter (waiters/neo.json)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)

    @cached_property
    def waiter_path(self) -> Path:
        return WAITERS / "neo.json"

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            return self.conn.describe_compilation_job(CompilationJobName=name)
        except self.conn.exceptions.ResourceNotFound:
            return None
