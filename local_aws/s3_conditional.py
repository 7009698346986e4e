"""S3 writes to one key are serialized, so a conditional write (If-None-Match: *, If-Match) is atomic.

moto checks the precondition, then writes, with nothing in between held: two PutObject calls with
`If-None-Match: *` on a new key racing each other can both pass the check and both succeed, each
believing it created the object. AWS: "Uploads the object only if the object key name does not already
exist in the bucket specified. Otherwise, Amazon S3 returns a 412 Precondition Failed error. If a
conflicting operation occurs during the upload S3 returns a 409 ConditionalRequestConflict response"
(PutObject, https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html; the same for
CompleteMultipartUpload). Here every write to a key (PUT: PutObject, CopyObject, UploadPart…; POST:
CompleteMultipartUpload) holds that key's lock from its precondition check to its write, so the loser of
a race sees the winner's object and gets the 412.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

from moto.s3 import responses as s3_responses

_STRIPES = [threading.Lock() for _ in range(64)]  # a lock per key would grow without end


def key_lock(bucket: str, key: str) -> threading.Lock:
    return _STRIPES[zlib.crc32(f"{bucket}/{key}".encode()) % len(_STRIPES)]


def _put(original: Any) -> Any:
    def put(self: s3_responses.S3Response, query: dict[str, Any], key_name: str) -> Any:
        with key_lock(self.bucket_name, key_name):
            return original(self, query, key_name)

    return put


def _post(original: Any) -> Any:
    def post(
        self: s3_responses.S3Response, request: Any, body: bytes, bucket_name: str, query: Any, key_name: str
    ) -> Any:
        with key_lock(bucket_name, key_name):
            return original(self, request, body, bucket_name, query, key_name)

    return post


def install() -> None:
    response = s3_responses.S3Response
    response._key_response_put = _put(response._key_response_put)
    response._key_response_post = _post(response._key_response_post)
