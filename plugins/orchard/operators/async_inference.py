"""Invoke an async endpoint for every frame of one shard, then wait deferred for the answers.

The shard's frames come from S3 (a JSON list of S3 URIs); the invocation record — inference id,
output and failure location per frame — goes back to S3 as it grows, so a retried task finds which
frames were already invoked and does not invoke them again (only frames whose invocation failed are
invoked again). The result per frame (answered with its output, or failed with the reason the
endpoint wrote) is written to the same record when the wait ends; XCom gets only counts and the URI.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from orchard.hooks.async_inference import SageMakerAsyncInferenceHook, pool_size
from orchard.triggers.async_inference import (
    AsyncInferenceOutputsTrigger,
    failure_reasons_to_read,
    shard_results,
    shard_summary,
    split_uri,
)
from orchard.triggers.task_end import may_end_in_trigger
from orchard.waits import polls_covering

SAVE_EVERY = 200  # invocations between two saves of the record: a crash loses at most this many ids
# A frame's own MIME type, by suffix: what `content_type=""` sends.
IMAGE_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def content_type_of(location: str) -> str:
    """The MIME type of an image by its suffix; a location with another suffix is refused, naming it."""
    suffix = "." + location.rsplit(".", 1)[-1].lower() if "." in location.rsplit("/", 1)[-1] else ""
    if suffix not in IMAGE_CONTENT_TYPES:
        raise ValueError(
            f"{location}: no image content type for suffix {suffix or '(none)'!r}; "
            f"frames must end in {', '.join(IMAGE_CONTENT_TYPES)}, or give content_type"
        )
    return IMAGE_CONTENT_TYPES[suffix]


class SageMakerAsyncInvokeOperator(AwsBaseOperator[SageMakerAsyncInferenceHook]):
    """`shard`: {"index", "frames_uri", "record_uri"}; returns {"shard", "answered", "failed", "unanswered",
    "record_uri"} ("failed" includes the "unanswered" frames: no output nor failure within `max_wait_s`).

    `content_type`: the ContentType of every invocation; empty: each frame's own (image/png, image/jpeg by
    suffix). `accept`: the Accept of every invocation (what the model is asked to answer); empty: none.
    """

    aws_hook_class = SageMakerAsyncInferenceHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "shard", "content_type", "accept", "max_concurrency", "waiter_delay"
    )

    def __init__(
        self,
        *,
        endpoint_name: str,
        shard: dict[str, Any],
        content_type: str = "",
        accept: str = "",
        max_concurrency: int | str = 16,
        max_wait_s: int = 3600,
        waiter_delay: int | str = 30,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.endpoint_name, self.shard, self.content_type = endpoint_name, shard, content_type
        self.accept = accept
        self.max_concurrency, self.max_wait_s, self.waiter_delay = max_concurrency, max_wait_s, waiter_delay

    def execute(self, context: Any) -> dict[str, Any]:
        from orchard.auto_labeling.s3_objects import read_text  # task code: not at DAG parse time

        clients = self._clients()
        s3 = clients.client("s3")
        frames = json.loads(read_text(s3, self.shard["frames_uri"]))
        record = self._load_record(s3)
        invoked = {i["input"]: i for i in record["invocations"] if "output" in i}
        again = self._to_invoke_again(s3, record, list(invoked.values()))
        todo = [f for f in frames if f not in invoked or f in again]
        self.log.info(
            "shard %s: %d frames, %d already invoked, invoking %d (%d again after a failure)",
            self.shard["index"],
            len(frames),
            len(invoked) - len(again),
            len(todo),
            len(again),
        )
        kept = [i for i in invoked.values() if i["input"] not in again]
        # the previous try's results are stale once frames are invoked again
        record = {k: v for k, v in record.items() if k != "results"}
        fresh: list[dict[str, str]] = []

        def save_progress(result: dict[str, str]) -> None:
            fresh.append(result)
            if len(fresh) % SAVE_EVERY == 0:
                self._save(s3, {**record, "invocations": kept + fresh})

        for frame in todo if not self.content_type else ():
            content_type_of(frame)  # an unknown suffix fails here, before any invocation
        self.hook.invoke_many(
            self.endpoint_name,
            todo,
            self.content_type or content_type_of,
            int(self.max_concurrency),
            on_result=save_progress,
            accept=self.accept,
            client=clients.client("sagemaker-runtime"),
        )
        record = {**record, "invocations": kept + fresh}
        self._save(s3, record)
        refused = [i for i in fresh if "error" in i]
        if todo and len(refused) == len(todo):
            raise RuntimeError(
                f"the endpoint refused every invocation of shard {self.shard['index']}: {refused[0]['error']}"
            )
        self.defer(
            trigger=AsyncInferenceOutputsTrigger(
                record_uri=self.shard["record_uri"],
                endpoint_name=self.endpoint_name,
                waiter_delay=int(self.waiter_delay),
                waiter_max_attempts=polls_covering(self.max_wait_s, self.waiter_delay),
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                end_in_trigger=may_end_in_trigger(self),
                shard_index=self.shard["index"],
            ),
            method_name="execute_complete",
            timeout=datetime.timedelta(seconds=self.max_wait_s + 300),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every frame ends answered or failed with its reason; a frame whose answer never came within
        `max_wait_s` is recorded as failed ("no answer") instead of failing the shard: the run builds the
        manifest of the answered frames and reports the rest; clearing the task invokes only those again."""
        if event and event.get("status") == "error":
            raise RuntimeError(f"shard {self.shard['index']}: {event.get('message')}")
        s3 = self._clients().client("s3")
        record = self._load_record(s3)
        waited = (event or {}).get("waited_s", self.max_wait_s)
        results = self._results(s3, record["invocations"], waited)
        self._save(s3, {**record, "results": results})
        summary = shard_summary(self.shard["index"], results, self.shard["record_uri"])
        self.log.info(
            "shard %s: %d answered, %d failed (%d without an answer after %s s)",
            self.shard["index"],
            summary["answered"],
            summary["failed"],
            summary["unanswered"],
            waited,
        )
        for result in results:
            if result.get("unanswered"):
                self.log.warning("no answer: %s", result["input"])
        return summary

    # ------------------------------------------------------------------ record

    def _clients(self) -> Any:
        """S3 and sagemaker-runtime clients on ONE session of the operator's hook (its connection, Region,
        botocore config): an S3Hook beside the hook built two more sessions (its client and the boto3
        resource of `read_key`), each with the connection's AssumeRole and the user-agent stack walk."""
        from orchard.aws import SessionClients

        return SessionClients(self.hook, max_pool_connections=pool_size(int(self.max_concurrency)))

    def _load_record(self, s3: Any) -> dict[str, Any]:
        from orchard.auto_labeling.s3_objects import exists, read_text

        if exists(s3, self.shard["record_uri"]):
            return json.loads(read_text(s3, self.shard["record_uri"]))
        return {"endpoint": self.endpoint_name, "shard": self.shard["index"], "invocations": []}

    def _save(self, s3: Any, record: dict[str, Any]) -> None:
        from orchard.auto_labeling.s3_objects import write_text

        write_text(s3, self.shard["record_uri"], json.dumps(record))

    def _to_invoke_again(
        self, s3: Any, record: dict[str, Any], invocations: list[dict[str, str]]
    ) -> set[str]:
        """Of the frames invoked by an earlier try, those to invoke again: not answered, and either failed
        (a failure object, or the earlier try recorded it failed, e.g. no answer in time). A frame still
        pending from a try that crashed while waiting is waited on, not invoked again."""
        recorded_failed = {r["input"] for r in record.get("results", []) if r["status"] == "failed"}
        locations = [i[k] for i in invocations for k in ("output", "failure") if i.get(k)]
        existing = _existing(s3, locations) if locations else set()
        return {
            i["input"]
            for i in invocations
            if i["output"] not in existing
            and (i["input"] in recorded_failed or (i.get("failure") and i["failure"] in existing))
        }

    def _results(
        self, s3: Any, invocations: list[dict[str, str]], waited_s: int | float
    ) -> list[dict[str, Any]]:
        from orchard.auto_labeling.s3_objects import read_text

        existing = _existing(s3, [i[k] for i in invocations for k in ("output", "failure") if i.get(k)])
        reasons = {uri: read_text(s3, uri) for uri in failure_reasons_to_read(invocations, existing)}
        return shard_results(invocations, existing, reasons, self.endpoint_name, waited_s)


def _existing(s3: Any, locations: list[str]) -> set[str]:
    """Which of `locations` exist, listing each folder once (not one HEAD per object)."""
    found: set[str] = set()
    for bucket, prefix in {(split_uri(u)[0], split_uri(u)[1].rsplit("/", 1)[0] + "/") for u in locations}:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update(f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", ()))
    return found
