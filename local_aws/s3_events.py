"""S3 → EventBridge in the sandbox: GetBucketNotificationConfiguration reports EventBridgeConfiguration.

moto 5.2.5 stores a bucket's EventBridgeConfiguration and delivers its "Object Created" events to the
EventBridge rules (and so to their SQS targets), but its GetBucketNotificationConfiguration leaves
the setting out. Code that reads the configuration before changing it (PutBucketNotificationConfiguration
replaces the whole document) would then never see that EventBridge is on. This adds it back, as AWS
answers: an empty `<EventBridgeConfiguration/>` element.
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.s3 import notifications as s3_notifications
from moto.s3 import responses as s3_responses


def get_bucket_notification(self: s3_responses.S3Response) -> Any:
    """moto's `S3Response.get_bucket_notification`, with EventBridgeConfiguration when it is set."""
    configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
    if not configuration:
        return self.serialized(EmptyResult())

    def described(item: Any, arn_key: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": item.id, arn_key: item.arn, "Events": item.events}
        if item.filters:
            entry["Filter"] = {"Key": {"FilterRules": item.filters["S3Key"]["FilterRule"]}}
        return entry

    result: dict[str, Any] = {
        "TopicConfigurations": [described(t, "TopicArn") for t in configuration.topic],
        "QueueConfigurations": [described(q, "QueueArn") for q in configuration.queue],
        "LambdaFunctionConfigurations": [
            described(f, "LambdaFunctionArn") for f in configuration.cloud_function
        ],
    }
    if configuration.event_bridge is not None:
        result["EventBridgeConfiguration"] = {}
    self.data["Action"] = "GetBucketNotificationConfiguration"
    return self.serialized(ActionResult(result))


_SEQUENCE = itertools.count(time.time_ns())


def event_bridge_object_detail(key: Any) -> dict[str, Any]:
    """The `detail.object` of an S3 event sent to EventBridge, as AWS writes it ("EventBridge event message
    structure", https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html): `etag` (moto 5.2.5
    spells it `eTag`, which code written for AWS never reads), `version-id` only in a versioned bucket, and
    a `sequencer` that grows with each event (moto sends one constant, so distinct uploads of a key would
    look like one event delivered twice)."""
    detail: dict[str, Any] = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', "")}
    if key.version_id not in (None, "null"):
        detail["version-id"] = key.version_id
    detail["sequencer"] = f"{next(_SEQUENCE):016X}"
    return detail


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    """moto's S3 → EventBridge delivery with AWS's `detail.object` (`event_bridge_object_detail`)."""
    try:
        from moto.events.models import events_backends
        from moto.events.utils import _BASE_EVENT_MESSAGE

        event = copy.deepcopy(_BASE_EVENT_MESSAGE)
        event["detail-type"] = s3_notifications._detail_type(event_name)
        event["source"] = "aws.s3"
        event["account"] = account_id
        event["time"] = s3_notifications.unix_time()
        event["region"] = bucket.region_name
        event["resources"] = [bucket.arn]
        event["detail"] = {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": event_bridge_object_detail(key),
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": event_name.split(":")[1],
        }
        events_backend = events_backends[account_id][bucket.region_name]
        for event_bus in events_backend.event_buses.values():
            for rule in event_bus.rules.values():
                rule.send_to_targets(event, transform_input=False)
    except Exception:  # noqa: BLE001 - asynchronous on AWS: a failed delivery never fails the PutObject
        pass


def install() -> None:
    s3_responses.S3Response.get_bucket_notification = get_bucket_notification
    s3_notifications._send_event_bridge_message = _send_event_bridge_message
