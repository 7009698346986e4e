"""Capture batching (buffer size, batch size, push period) in the agent's own environment."""

from __future__ import annotations

import json

DRIVER = """
import json, time
import numpy as np
from capture import CaptureBuffer, CaptureSettings, decode_tensor

class FakeS3:
    def __init__(self): self.objects = {}
    def put_object(self, Bucket, Key, Body, ContentType): self.objects[Key] = Body

s3 = FakeS3()
settings = CaptureSettings(bucket="b", prefix="captures/fleet", buffer_size=6, batch_size=3, push_period_seconds=0.3)
buffer = CaptureBuffer(settings, s3, "dev-1")
for i in range(3):
    buffer.add("m", np.full((2, 2, 3), i, np.uint8), np.array([0.1, 0.9]), f"r{i}")
time.sleep(0.2)
full_batch = len(s3.objects)          # a full batch goes at once
buffer.add("m", np.zeros((2, 2, 3), np.uint8), np.array([1.0, 0.0]), "r3")
time.sleep(0.6)
after_period = len(s3.objects)        # a partial batch goes when the push period ends
buffer._closed = True                 # stop pushing: the buffer must bound what waits
time.sleep(0.4)
for i in range(10):
    buffer.add("m", np.zeros((2, 2, 3), np.uint8), np.array([1.0, 0.0]), f"x{i}")
waiting, dropped = len(buffer._records), buffer.dropped
buffer.flush()
records = [json.loads(line) for body in s3.objects.values() for line in body.splitlines()]
print(json.dumps({"full_batch": full_batch, "after_period": after_period, "waiting": waiting, "dropped": dropped,
                  "records": len(records), "keys": sorted(s3.objects),
                  "first_input": decode_tensor(records[0]["input"]).tolist()[0][0]}))
"""


def test_capture_pushes_full_batches_at_once_partial_ones_each_period_and_bounds_the_buffer(run_job_python):
    result = run_job_python("edge_agent", "-c", DRIVER, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["full_batch"] == 1 and out["after_period"] == 2
    assert out["waiting"] == 6 and out["dropped"] == 4
    assert out["records"] == 3 + 1 + 6
    assert all(key.startswith("captures/fleet/dev-1/m/") and key.endswith(".jsonl") for key in out["keys"])
    assert out["first_input"] == [0, 0, 0]
