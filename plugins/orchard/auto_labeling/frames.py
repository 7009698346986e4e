"""The camera frames a run labels: listed under their folder and checked as the model's handler reads them,
before anything is billed."""

from __future__ import annotations

from typing import Any

from orchard.auto_labeling.s3_objects import bucket_exists, split
from orchard.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# What a decodable frame starts with, by suffix (PNG: the 8-byte signature, RFC 2083 §3.1; JPEG: the SOI
# marker FF D8 FF, ITU T.81 Annex B): the model's handler (cv2.imdecode) refuses anything else.
SIGNATURES = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",)}
CHECK_CONCURRENCY = 16


def list_frames(s3: Any, prefix_uri: str, max_frames: int) -> list[str]:
    """The frames under the folder `prefix_uri` (ends in /): every image checked as the model's handler
    would read it (not empty, the PNG / JPEG signature its suffix promises) before anything is billed."""
    bucket, prefix = split(prefix_uri)
    if not bucket_exists(s3, bucket):
        raise InputError(f"frames_prefix {prefix_uri}: bucket {bucket} does not exist or is not readable")
    sizes = {
        item["Key"]: item["Size"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"].lower().endswith(IMAGE_SUFFIXES)
    }
    keys = sorted(sizes)
    if not keys:
        raise InputError(
            f"no frames (.png, .jpg, .jpeg) under {prefix_uri}: check frames_prefix (a folder: "
            "its sub-folders are read, sibling folders that share its name's start are not)"
        )
    if len(keys) > max_frames:
        print(f"{len(keys)} frames under {prefix_uri}; labeling the first {max_frames} (param max_frames)")
    keys = keys[:max_frames]
    _check_frames(s3, bucket, keys, sizes)
    return [f"s3://{bucket}/{key}" for key in keys]


def _check_frames(s3: Any, bucket: str, keys: list[str], sizes: dict[str, int]) -> None:
    """Refuse 0-byte frames and frames that are not the image their suffix says (one ranged GET of the
    first 8 bytes each), naming their S3 URIs: the endpoint would only answer each with a decoder error."""
    from concurrent.futures import ThreadPoolExecutor

    def head(key: str) -> bytes:
        return s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-7")["Body"].read()

    empty = [key for key in keys if sizes[key] == 0]
    rest = [key for key in keys if sizes[key] > 0]
    with ThreadPoolExecutor(max_workers=CHECK_CONCURRENCY) as pool:
        starts = dict(zip(rest, pool.map(head, rest), strict=True))
    wrong = [key for key, start in starts.items() if not start.startswith(SIGNATURES[_suffix(key)])]
    problems = [f"s3://{bucket}/{key} is empty (0 bytes)" for key in empty] + [
        f"s3://{bucket}/{key} is not a {_suffix(key)[1:].upper()} image (starts with {starts[key][:8]!r})"
        for key in wrong
    ]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise InputError(
            f"{len(problems)} frame(s) cannot be decoded: {shown}. Re-upload them from the camera's "
            "recording, or delete them (or move them out of frames_prefix), then trigger again"
        )


def _suffix(key: str) -> str:
    return "." + key.rsplit(".", 1)[-1].lower()
