"""Conditional writes are atomic in the sandbox (local_aws/s3_conditional.py): of two PutObject calls with
`If-None-Match: *` racing on a new key, exactly one creates it; the other gets 412 (as AWS answers)."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.s3 import models as s3_models


@pytest.fixture
def slow_writes(monkeypatch):
    """Every S3 write waits 0.3 s between moto's precondition check and its store: without the per-key
    lock both racers pass the check before either writes (measured: both succeeded)."""
    original = s3_models.S3Backend.put_object

    def put_object(self, *args, **kwargs):
        time.sleep(0.3)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(s3_models.S3Backend, "put_object", put_object)


def race(s3, key: str, racers: int = 4) -> list[str]:
    start, outcomes = threading.Barrier(racers), []

    def put(n: int) -> None:
        start.wait()
        try:
            s3.put_object(Bucket="race", Key=key, Body=f"writer {n}".encode(), IfNoneMatch="*")
            outcomes.append(f"created by {n}")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=put, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_racing_create_only_puts_leave_one_winner_and_412_for_the_others(aws, slow_writes):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="race")

    outcomes = race(s3, "marker.json")

    winners = [o for o in outcomes if o.startswith("created by")]
    assert len(winners) == 1, outcomes
    assert sorted(o for o in outcomes if o not in winners) == ["PreconditionFailed"] * 3
    body = s3.get_object(Bucket="race", Key="marker.json")["Body"].read().decode()
    assert winners == [f"created by {body.removeprefix('writer ')}"]  # the stored object is the winner's


def test_writes_to_other_keys_are_not_held_up_by_a_slow_one(aws, slow_writes):
    from local_aws.s3_conditional import key_lock

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="race")
    assert len({id(key_lock("race", f"k{n}")) for n in range(3)}) == 3  # three keys, three locks
    started = time.monotonic()
    threads = [
        threading.Thread(target=s3.put_object, kwargs={"Bucket": "race", "Key": f"k{n}", "Body": b"x"})
        for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(s3.list_objects_v2(Bucket="race")["Contents"]) == 3
    assert time.monotonic() - started < 0.85  # three 0.3 s writes at once, not one after another (0.9 s)
