"""Wait, in the triggerer, until every async invocation of a shard has an output or a failure object.

No botocore waiter can wait on N objects, so this polls S3 itself (aiobotocore, through the provider's
async connection): each poll lists the output and failure prefixes once and checks which of the
shard's expected objects exist. The shard's invocation record (S3 JSON) names them, so the trigger's
own arguments stay small however many frames a shard has.

Each poll also describes the endpoint: one that AWS says does not exist (deleted, or a sandbox that
restarted) can never answer, so the wait ends at once with an error naming it instead of polling until
`waiter_max_attempts` (DescribeEndpoint answers ValidationException "Could not find endpoint" for a name
it does not know: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html).

With `end_in_trigger`, once every invocation has its output or failure object the trigger does what the
operator's resume would (`orchard.triggers.task_end`): it writes each frame's result (answered, or failed
with the reason the endpoint wrote) into the shard's record and ends the task with the same summary as its
return value, instead of a fresh worker process doing it on the run's critical path. A timeout, an endpoint
that vanished, an S3 read or write of that end that fails, or a push that fails still resume the task, whose
operator words the outcome.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from orchard.triggers.task_end import end_with_xcoms, warm_the_supervisors_api

FAILURE_REASON_CHARS = 2000  # of a failure object's text kept in the record


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def folders(locations: list[str]) -> set[tuple[str, str]]:
    return {(split_uri(u)[0], split_uri(u)[1].rsplit("/", 1)[0] + "/") for u in locations}


def failure_reasons_to_read(invocations: list[dict[str, str]], existing: set[str]) -> list[str]:
    """The failure objects whose text is a frame's reason: invocations accepted, with no output but a
    failure object."""
    return [
        i["failure"]
        for i in invocations
        if "error" not in i and i["output"] not in existing and i.get("failure") in existing
    ]


def shard_results(
    invocations: list[dict[str, str]],
    existing: set[str],
    reasons: dict[str, str],
    endpoint_name: str,
    waited_s: int | float,
) -> list[dict[str, Any]]:
    """Each frame's result: answered (its output exists), failed with the reason (refused by
    InvokeEndpointAsync, or the text of its failure object from `reasons`), or failed unanswered."""
    results: list[dict[str, Any]] = []
    for invocation in invocations:
        if "error" in invocation:
            results.append({"input": invocation["input"], "status": "failed", "reason": invocation["error"]})
        elif invocation["output"] in existing:
            results.append(
                {"input": invocation["input"], "status": "answered", "output": invocation["output"]}
            )
        elif invocation.get("failure") in existing:
            reason = reasons[invocation["failure"]][:FAILURE_REASON_CHARS]
            results.append({"input": invocation["input"], "status": "failed", "reason": reason})
        else:
            results.append(
                {
                    "input": invocation["input"],
                    "status": "failed",
                    "unanswered": True,
                    "reason": (
                        f"no answer from endpoint {endpoint_name} within {waited_s} s: neither "
                        f"{invocation['output']} nor {invocation.get('failure') or 'a failure object'} "
                        "appeared (clear the invoke task to invoke this frame again)"
                    ),
                }
            )
    return results


def shard_summary(shard_index: Any, results: list[dict[str, Any]], record_uri: str) -> dict[str, Any]:
    """The invoke task's return value: counts per status and where the record is."""
    return {
        "shard": shard_index,
        "answered": sum(1 for r in results if r["status"] == "answered"),
        "failed": sum(1 for r in results if r["status"] == "failed"),
        "unanswered": sum(1 for r in results if r.get("unanswered")),
        "record_uri": record_uri,
    }


class AsyncInferenceOutputsTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        record_uri: str,
        waiter_delay: int,
        endpoint_name: str = "",
        waiter_max_attempts: int,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        end_in_trigger: bool = False,
        shard_index: Any = None,
    ):
        super().__init__()
        self.end_in_trigger, self.shard_index = bool(end_in_trigger), shard_index
        self.record_uri, self.waiter_delay, self.waiter_max_attempts = (
            record_uri,
            waiter_delay,
            waiter_max_attempts,
        )
        self.aws_conn_id, self.region_name = aws_conn_id, region_name
        self.endpoint_name = endpoint_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "record_uri": self.record_uri,
                "endpoint_name": self.endpoint_name,
                "waiter_delay": self.waiter_delay,
                "waiter_max_attempts": self.waiter_max_attempts,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "end_in_trigger": self.end_in_trigger,
                "shard_index": self.shard_index,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from botocore.exceptions import ClientError

        hook = AwsGenericHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="s3")
        sagemaker = AwsGenericHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="sagemaker"
        )
        if self.end_in_trigger:
            await warm_the_supervisors_api(self)
        async with await hook.get_async_conn() as s3, await sagemaker.get_async_conn() as endpoints:
            record = json.loads(await _read(s3, self.record_uri))
            invocations = [i for i in record["invocations"] if "output" in i]
            for attempt in range(1, self.waiter_max_attempts + 1):
                existing = await _existing(
                    s3,
                    [i["output"] for i in invocations] + [i["failure"] for i in invocations if i["failure"]],
                )
                pending = [
                    i for i in invocations if i["output"] not in existing and i["failure"] not in existing
                ]
                self.log.info(
                    "attempt %d: %d of %d invocations answered",
                    attempt,
                    len(invocations) - len(pending),
                    len(invocations),
                )
                if not pending:
                    ended = await self._end_task(s3, record, existing) if self.end_in_trigger else None
                    yield ended or TriggerEvent({"status": "success", "record_uri": self.record_uri})
                    return
                if self.endpoint_name:
                    try:
                        await endpoints.describe_endpoint(EndpointName=self.endpoint_name)
                    except ClientError as error:
                        if "Could not find endpoint" not in error.response["Error"]["Message"]:
                            raise
                        yield TriggerEvent(
                            {
                                "status": "error",
                                "record_uri": self.record_uri,
                                "message": f"endpoint {self.endpoint_name} does not exist (AWS: "
                                f"{error.response['Error']['Message']}): {len(pending)} invocations can "
                                "never be answered; deploy the endpoint again (clear deploy_endpoint) or "
                                "check who deleted it",
                            }
                        )
                        return
                await asyncio.sleep(self.waiter_delay)
        yield TriggerEvent(
            {
                "status": "timeout",
                "record_uri": self.record_uri,
                "pending": len(pending),
                "waited_s": self.waiter_delay * self.waiter_max_attempts,
            }
        )

    async def _end_task(self, s3: Any, record: dict[str, Any], existing: set[str]) -> TaskSuccessEvent | None:
        """Every frame's result saved in the record and the task ended with its summary, as
        `SageMakerAsyncInvokeOperator.execute_complete` would; None: the task resumes and does it."""
        if self.task_instance is None:  # dag.test(): it resumes the task after any event
            return None
        try:
            results = await self._save_results(s3, record, existing)
        except Exception as error:  # the resume reads and writes them again, with the task's retries
            self.log.warning("shard %s: %s; the task resumes to record its results", self.shard_index, error)
            return None
        summary = shard_summary(self.shard_index, results, self.record_uri)
        self.log.info(
            "shard %s: %d answered, %d failed", summary["shard"], summary["answered"], summary["failed"]
        )
        return await end_with_xcoms(self, {"return_value": summary})

    async def _save_results(
        self, s3: Any, record: dict[str, Any], existing: set[str]
    ) -> list[dict[str, Any]]:
        """Each frame's result (the failure objects' text read), written into the shard's record."""
        invocations = record["invocations"]
        reasons = {
            uri: (await _read(s3, uri)).decode("utf-8", errors="replace")
            for uri in failure_reasons_to_read(invocations, existing)
        }
        results = shard_results(invocations, existing, reasons, self.endpoint_name, 0)
        bucket, key = split_uri(self.record_uri)
        await s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({**record, "results": results}).encode())
        return results


async def _read(s3: Any, uri: str) -> bytes:
    bucket, key = split_uri(uri)
    response = await s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return await body.read()


async def _existing(s3: Any, locations: list[str]) -> set[str]:
    found: set[str] = set()
    for bucket, prefix in folders(locations):
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found.update(f"s3://{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
    return found
