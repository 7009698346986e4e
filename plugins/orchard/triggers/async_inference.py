"""Wait, in the triggerer, until every async invocation of a shard has an output or a failure object.

No botocore waiter can wait on N objects, so this polls S3 itself (aiobotocore, through the provider's
async connection): each poll lists the output and failure prefixes once and checks which of the
shard's expected objects exist. The shard's invocation record (S3 JSON) names them, so the trigger's
own arguments stay small however many frames a shard has.

Each poll also describes the endpoint: one that AWS says does not exist (deleted, or a sandbox that
restarted) can never answer, so the wait ends at once with an error naming it instead of polling until
`waiter_max_attempts` (DescribeEndpoint answers ValidationException "Could not find endpoint" for a name
it does not know: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from airflow.triggers.base import BaseTrigger, TriggerEvent


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def folders(locations: list[str]) -> set[tuple[str, str]]:
    return {(split_uri(u)[0], split_uri(u)[1].rsplit("/", 1)[0] + "/") for u in locations}


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
    ):
        super().__init__()
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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from botocore.exceptions import ClientError

        hook = AwsGenericHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="s3")
        sagemaker = AwsGenericHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="sagemaker"
        )
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
                    yield TriggerEvent({"status": "success", "record_uri": self.record_uri})
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
