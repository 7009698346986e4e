"""Capture of inference inputs and outputs to S3, in batches (the seed's capture_data_* settings).

Records wait in a bounded buffer (`buffer_size`); a background thread writes them `batch_size` at a time
as one JSON Lines object, at least every `push_period_seconds`. A full buffer drops the oldest records
and counts them, rather than block the device's predictions.
Object keys: <prefix>/<device>/<model>/<yyyy>/<mm>/<dd>/<hh>/<unix ms>-<seq>.jsonl
"""

from __future__ import annotations

import base64
import collections
import json
import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaptureSettings:
    bucket: str
    prefix: str
    buffer_size: int = 30
    batch_size: int = 10
    push_period_seconds: float = 4.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= self.buffer_size:
            raise ValueError(
                f"capture batch_size {self.batch_size} must be between 1 and buffer_size {self.buffer_size}"
            )
        if self.push_period_seconds <= 0:
            raise ValueError("capture push_period_seconds must be > 0")


def encode_tensor(array: np.ndarray) -> dict:
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(array.tobytes()).decode(),
    }


def decode_tensor(record: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(record["data"]), dtype=record["dtype"]).reshape(record["shape"])


class CaptureBuffer:
    def __init__(self, settings: CaptureSettings, s3_client, device: str):
        """`s3_client`: a client, or a callable returning the current one (credentials rotate)."""
        self.settings, self._device = settings, device
        self._s3 = s3_client if callable(s3_client) else (lambda: s3_client)
        self._records: collections.deque = collections.deque()
        self._lock = threading.Condition()
        self._sequence = 0
        self.dropped = 0
        self.pushed_records = 0
        self.pushed_objects: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._push_loop, daemon=True, name="capture")
        self._thread.start()

    def add(self, model: str, inputs: np.ndarray, outputs: np.ndarray, request_id: str) -> None:
        record = {
            "device": self._device,
            "model": model,
            "request_id": request_id,
            "time": time.time(),
            "input": encode_tensor(inputs),
            "output": encode_tensor(outputs.astype(np.float32)),
        }
        with self._lock:
            if len(self._records) >= self.settings.buffer_size:
                self._records.popleft()
                self.dropped += 1
            self._records.append(record)
            if len(self._records) >= self.settings.batch_size:
                self._lock.notify()

    def flush(self) -> None:
        """Push everything buffered now (called before reporting a job done, and at shutdown)."""
        while True:
            with self._lock:
                batch = self._take(len(self._records))
            if not batch:
                return
            self._push(batch)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            self._lock.notify()
        self._thread.join(timeout=10)
        self.flush()

    def _take(self, count: int) -> list[dict]:
        return [
            self._records.popleft() for _ in range(min(count, self.settings.batch_size, len(self._records)))
        ]

    def _push_loop(self) -> None:
        deadline = time.monotonic() + self.settings.push_period_seconds
        while not self._closed:
            with self._lock:
                self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))
                due = time.monotonic() >= deadline
                batch = (
                    self._take(self.settings.batch_size)
                    if due or len(self._records) >= self.settings.batch_size
                    else []
                )
            if due:
                deadline = time.monotonic() + self.settings.push_period_seconds
            if batch:
                self._push(batch)

    def _push(self, batch: list[dict]) -> None:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        first = batch[0]
        stamp = time.gmtime(first["time"])
        key = (
            f"{self.settings.prefix.strip('/')}/{self._device}/{first['model']}/"
            f"{time.strftime('%Y/%m/%d/%H', stamp)}/{int(first['time'] * 1000)}-{sequence:05d}.jsonl"
        )
        body = "\n".join(json.dumps(r) for r in batch).encode()
        self._s3().put_object(
            Bucket=self.settings.bucket, Key=key, Body=body, ContentType="application/jsonl"
        )
        self.pushed_records += len(batch)
        self.pushed_objects.append(key)
