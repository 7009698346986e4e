"""Check a DeepLabCut project zip in S3 before any GPU starts: read only what the checks need.

`validate_project(s3, bucket, key, max_bytes)` reads the object through ranged GETs (the zip's
central directory, then config.yaml and the label CSVs), never the whole zip, and raises
`ProjectRejected` with the problem and its fix, or returns a small summary of the project.
"""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

MiB = 1024 * 1024
# Files the checks read whole (config.yaml, label CSVs): larger ones are not a DeepLabCut project's.
MAX_TEXT_BYTES = 20 * MiB
READ_BLOCK = 64 * 1024  # smallest ranged GET: zipfile's many small header reads share one request


class ProjectRejected(ValueError):
    """The project cannot train; the message names the problem and the fix."""


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object: each read() is a ranged GetObject."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int, block: int = READ_BLOCK):
        self._s3, self._bucket, self._key, self._size = s3, bucket, key, size
        self._position = 0
        self._block = block
        self._cache: tuple[int, bytes] = (0, b"")  # zipfile reads small headers: one block serves many
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        start, data = self._cache
        if not (start <= self._position and self._position + wanted <= start + len(data)):
            end = min(self._size, self._position + max(wanted, self._block)) - 1
            body = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}")
            data = body["Body"].read()
            self.bytes_read += len(data)
            start = self._position
            self._cache = (start, data)
        chunk = data[self._position - start : self._position - start + wanted]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


@dataclass(frozen=True)
class ProjectSummary:
    root: str  # folder of config.yaml inside the zip ("" at the top)
    task: str
    bodyparts: list[str]
    labeled_frames: int
    label_files: int
    zip_bytes: int
    bytes_read: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def validate_project(s3: Any, bucket: str, key: str, max_bytes: int) -> ProjectSummary:
    where = f"s3://{bucket}/{key}"
    if not key.endswith(".zip"):
        raise ProjectRejected(f"{where} is not a .zip: upload the project as `zip -r <name>.zip <project folder>`")
    size = _object_size(s3, bucket, key, where)
    if size > max_bytes:
        raise ProjectRejected(
            f"{where} is {size / MiB:.1f} MiB, over the {max_bytes / MiB:.0f} MiB limit (param max_zip_mb): "
            "leave the videos out of the zip (training reads labeled-data only) or raise max_zip_mb"
        )
    reader = S3RangeReader(s3, bucket, key, size)
    try:
        archive = zipfile.ZipFile(io.BufferedReader(reader, READ_BLOCK))
    except zipfile.BadZipFile as error:
        raise ProjectRejected(
            f"{where} is not a zip file ({error}): create it with `zip -r <name>.zip <project folder>`"
        ) from None
    with archive:
        members = archive.infolist()
        if not members:
            raise ProjectRejected(f"{where} is an empty zip: zip the DeepLabCut project folder itself")
        _refuse_unsafe_paths(members, where)
        root = _project_root(members, where)
        config = _read_config(archive, root, where)
        bodyparts = _bodyparts(config, where)
        names = {m.filename for m in members}
        label_files, frames = _check_labels(archive, root, names, where)
    return ProjectSummary(root, str(config.get("Task", "")), bodyparts, frames, label_files, size, reader.bytes_read)


def _object_size(s3: Any, bucket: str, key: str, where: str) -> int:
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ProjectRejected(f"{where} does not exist: check the project_uri (bucket and key)") from None
        raise


def _refuse_unsafe_paths(members: list[zipfile.ZipInfo], where: str) -> None:
    for member in members:
        name = member.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and parts[0].endswith(":")):
            raise ProjectRejected(
                f"{where} holds the absolute path {name!r}: zip from the project's parent folder "
                "(`cd /home/dlc/projects && zip -r project.zip <project>`), not with absolute paths"
            )
        if ".." in parts:
            raise ProjectRejected(
                f"{where} holds {name!r}, which points outside the project (`..`, zip-slip): rebuild the zip "
                "from inside the project's parent folder"
            )
        kind = stat.S_IFMT(member.external_attr >> 16)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ProjectRejected(
                f"{where} holds {name!r} as a symbolic link or special file: zip with `zip -r` (without -y) "
                "so that files are stored, not links"
            )


def _project_root(members: list[zipfile.ZipInfo], where: str) -> str:
    configs = sorted(
        (m.filename for m in members if PurePosixPath(m.filename).name == "config.yaml"),
        key=lambda name: name.count("/"),
    )
    if not configs:
        raise ProjectRejected(
            f"{where} has no config.yaml: zip the whole DeepLabCut project folder (the one "
            "create_new_project made, with config.yaml and labeled-data/)"
        )
    parent = str(PurePosixPath(configs[0]).parent)
    return "" if parent == "." else f"{parent}/"


def _read_config(archive: zipfile.ZipFile, root: str, where: str) -> dict:
    import yaml

    info = archive.getinfo(f"{root}config.yaml")
    if info.file_size > MAX_TEXT_BYTES:
        raise ProjectRejected(f"{where}: {root}config.yaml is {info.file_size} bytes, not a DeepLabCut config")
    try:
        config = yaml.safe_load(archive.read(info))
    except yaml.YAMLError as error:
        raise ProjectRejected(f"{where}: {root}config.yaml is not valid YAML ({error}): fix it in the lab") from None
    if not isinstance(config, dict):
        raise ProjectRejected(f"{where}: {root}config.yaml is not a DeepLabCut config (no key: value pairs)")
    return config


def _bodyparts(config: dict, where: str) -> list[str]:
    bodyparts = config.get("bodyparts")
    if config.get("multianimalproject") and (not bodyparts or bodyparts == "MULTI!"):
        bodyparts = [*(config.get("multianimalbodyparts") or []), *(config.get("uniquebodyparts") or [])]
    if not isinstance(bodyparts, list) or not bodyparts:
        raise ProjectRejected(
            f"{where}: config.yaml defines no bodyparts: list the keypoints under `bodyparts:` and label "
            "frames with them before zipping"
        )
    return [str(b) for b in bodyparts]


def _check_labels(archive: zipfile.ZipFile, root: str, names: set[str], where: str) -> tuple[int, int]:
    labeled = f"{root}labeled-data/"
    if not any(name.startswith(labeled) and not name.endswith("/") for name in names):
        raise ProjectRejected(
            f"{where} has no labeled-data/: extract and label frames (deeplabcut.extract_frames, "
            "label_frames) before zipping the project"
        )
    csvs = sorted(n for n in names if n.startswith(labeled) and PurePosixPath(n).name.startswith("CollectedData_")
                  and n.endswith(".csv"))
    h5s = [n for n in names if n.startswith(labeled) and PurePosixPath(n).name.startswith("CollectedData_")
           and n.endswith(".h5")]
    if not csvs and not h5s:
        raise ProjectRejected(
            f"{where}: labeled-data/ holds no CollectedData_<scorer>.csv/.h5: save the labels in the "
            "labeling GUI before zipping"
        )
    frames = 0
    for name in csvs:
        for image in _label_images(archive, name, where):
            path = f"{root}{image}"
            if path not in names:
                raise ProjectRejected(
                    f"{where}: {name} labels {image}, which is not in the zip: add the frame, or delete its "
                    "labels in the labeling GUI and save again"
                )
            frames += 1
    return len(csvs) + len(h5s), frames


def _label_images(archive: zipfile.ZipFile, name: str, where: str) -> list[str]:
    """Image paths (relative to the project) of a DeepLabCut label CSV: 3 header rows, then one per image."""
    info = archive.getinfo(name)
    if info.file_size > MAX_TEXT_BYTES:
        raise ProjectRejected(f"{where}: {name} is {info.file_size} bytes, too large for a label file")
    rows = list(csv.reader(io.TextIOWrapper(archive.open(info), encoding="utf-8", newline="")))
    header_rows = next((i for i, row in enumerate(rows) if row and row[0] == "coords"), None)
    if header_rows is None:
        raise ProjectRejected(f"{where}: {name} is not a DeepLabCut label file (no `coords` header row)")
    images = []
    for row in rows[header_rows + 1 :]:
        if not row or not row[0]:
            continue
        if row[0] == "labeled-data" and len(row) > 2 and row[1] and row[2]:  # index as 3 columns
            images.append(f"labeled-data/{row[1]}/{row[2]}")
        else:  # index as one path column
            images.append(row[0].replace("\\", "/"))
    return images
