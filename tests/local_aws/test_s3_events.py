"""S3 → EventBridge → SQS in the sandbox: the bucket's setting reads back, and events reach the queue."""

from __future__ import annotations

import json

import boto3


def test_eventbridge_notifications_read_back_and_route_object_created_to_sqs(aws):
    s3, events, sqs = boto3.client("s3"), boto3.client("events"), boto3.client("sqs")
    s3.create_bucket(Bucket="lab-uploads")
    assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket="lab-uploads")

    s3.put_bucket_notification_configuration(
        Bucket="lab-uploads", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    assert s3.get_bucket_notification_configuration(Bucket="lab-uploads")["EventBridgeConfiguration"] == {}

    queue = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"object": {"key": [{"wildcard": "in/*.zip"}]}},
    }
    events.put_rule(Name="zips", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="zips", Targets=[{"Id": "q", "Arn": queue_arn}])
    s3.put_object(Bucket="lab-uploads", Key="in/a.zip", Body=b"1")
    s3.put_object(Bucket="lab-uploads", Key="in/a.txt", Body=b"2")

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    details = [json.loads(m["Body"])["detail"] for m in messages]
    assert [(d["bucket"]["name"], d["object"]["key"]) for d in details] == [("lab-uploads", "in/a.zip")]


def test_object_created_detail_has_aws_field_names_and_one_sequencer_per_event(aws):
    """AWS's `detail.object`: `etag` (moto wrote `eTag`), `version-id` only when versioned, a sequencer per
    event (moto sent one constant: two uploads of a key looked like one event delivered twice)."""
    s3, events, sqs = boto3.client("s3"), boto3.client("events"), boto3.client("sqs")
    s3.create_bucket(Bucket="lab-uploads")
    s3.put_bucket_notification_configuration(
        Bucket="lab-uploads", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"]}
    events.put_rule(Name="all", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": queue_arn}])
    etags = [
        s3.put_object(Bucket="lab-uploads", Key="in/a.zip", Body=body)["ETag"].strip('"')
        for body in (b"first", b"second")
    ]

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    objects = [json.loads(m["Body"])["detail"]["object"] for m in messages]
    assert sorted(o["etag"] for o in objects) == sorted(etags)
    assert all("eTag" not in o and "version-id" not in o for o in objects)  # the bucket is not versioned
    assert len({o["sequencer"] for o in objects}) == 2
