"""The upload watcher's queue vanished: the trigger names the queue and the fix, and resumes once it exists."""

from __future__ import annotations

import asyncio
import json

import boto3

from orchard.triggers.upload_queue import UploadQueueTrigger

FIX = "Recreate it: run `make-the-queue`."


def test_a_missing_upload_queue_is_logged_with_its_url_and_the_fix_and_the_watcher_resumes(aws, capfd):
    sqs = boto3.client("sqs")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/orchard-pose-training-uploads"
    trigger = UploadQueueTrigger(
        sqs_queue=url, aws_conn_id="aws_default", max_messages=1, waiter_delay=1, fix=FIX
    )
    assert trigger.serialize() == (
        "orchard.triggers.upload_queue.UploadQueueTrigger",
        {**trigger.serialize()[1], "fix": FIX},
    )

    async def scenario():
        events = trigger.run()
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(3)  # polls a queue that does not exist
        assert not waiting.done()  # no crash loop: still watching
        queue = sqs.create_queue(QueueName="orchard-pose-training-uploads")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"detail": {}}))
        return await asyncio.wait_for(waiting, timeout=30)

    event = asyncio.run(scenario())

    assert event.payload["status"] == "success" and len(event.payload["message_batch"]) == 1
    log = capfd.readouterr().out  # the triggerer's structured log
    errors = [line for line in log.splitlines() if "[error" in line]
    assert errors and url in errors[0] and FIX in errors[0] and "does not exist" in errors[0]
    assert "exists again: watching it" in log
