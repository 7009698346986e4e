"""S3 → EventBridge in the sandbox: GetBucketNotificationConfiguration reports EventBridgeConfiguration.

moto 5.2.5 stores a bucket's EventBridgeConfiguration and delivers its "Object Created" events to the
EventBridge rules (and so to their SQS targets), but its GetBucketNotificationConfiguration leaves
the setting out. Code that reads the configuration before changing it (PutBucketNotificationConfiguration
replaces the whole document) would then never see that EventBridge is on. This adds it back, as AWS
answers: an empty `<EventBridgeConfiguration/>` element.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, EmptyResult
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


def install() -> None:
    s3_responses.S3Response.get_bucket_notification = get_bucket_notification
