"""Check a DeepLabCut project zip in S3 before any GPU starts: read only what the checks need.

`validate_project(s3, bucket, key, max_bytes)` reads the object through ranged GETs (the zip's
central directory, then config.yaml and the label CSVs), never the whole zip, and raises
`ProjectRejected` (an `orchard.errors.InputError`: no retry) with the problem and its fix, or returns a
small summary of the project.

The checks are DeepLabCut 3.0.2's own rules as its loaders apply them on the training instance, mirrored
in pure Python so that they run here on CPU, before any GPU (the job, `include/pose_training/dlc_train.py`,
repeats the same normalisation and checks before training; `tests/plugins/pose_training/test_project.py` proves the
two agree on the same zips):

- entry names: what `unzip` on Linux makes of them. Backslash separators (Windows tools) are folders;
  names stored without the zip's UTF-8 flag (bit 11) are decoded as UTF-8 when they are valid UTF-8
  (macOS Archive Utility, 7-Zip), else cp437 (the zip standard's default); macOS's `__MACOSX/` and
  `._*` AppleDouble entries and `.DS_Store` are not project files and are skipped.
- sizes, from the central directory before anything is inflated: the uncompressed total and each
  entry's compression ratio are bounded (a zip bomb never reaches the GPU instance).
- config.yaml (CRLF or LF, UTF-8 with or without BOM): `project_path` and the `video_sets` paths may be
  another machine's (Windows) paths: the job rewrites them. DeepLabCut reads the labels of the
  `labeled-data/<video stem>/` folders of `video_sets` only (`convertcsv2h5`, `merge_annotateddatasets`:
  `Path(video).stem`), from `CollectedData_<config scorer>.csv|.h5`, and reindexes them on the config's
  bodyparts: a project whose label files are another scorer's, whose folders match no video, or whose
  labels name other bodyparts than the config would train on nothing (or silently drop labels).
"""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from orchard.errors import InputError

MiB = 1024 * 1024
# Files the checks read whole (config.yaml, label CSVs): larger ones are not a DeepLabCut project's.
MAX_TEXT_BYTES = 20 * MiB
READ_BLOCK = 64 * 1024  # smallest ranged GET: zipfile's many small header reads share one request
# Defaults of the DAG's max_unzipped_mb and max_zip_ratio: a real project's PNGs, CSVs and videos inflate
# little (ratio < 10); a zip bomb's entries inflate 1000x and more.
DEFAULT_MAX_UNZIPPED_MB = 8192
DEFAULT_MAX_RATIO = 100
RATIO_FLOOR_BYTES = MiB  # entries smaller than this are not ratio-checked (a 2 KiB YAML may compress 50x)
UTF8_FLAG = 0x800  # general purpose bit 11: the entry's name is UTF-8 (APPNOTE.TXT 4.4.4)
SKIPPED_FOLDERS = ("__MACOSX",)
SKIPPED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


def zip_limits(params: Any) -> dict[str, int]:
    """The run's bounds on what a project inflates to (params `max_unzipped_mb`, `max_zip_ratio`; their
    defaults where the DAG's form does not have them yet)."""
    return {
        "max_unzipped_mb": int(params.get("max_unzipped_mb", DEFAULT_MAX_UNZIPPED_MB)),
        "max_zip_ratio": int(params.get("max_zip_ratio", DEFAULT_MAX_RATIO)),
    }


class ProjectRejected(InputError):
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
            body = self._s3.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}"
            )
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


def validate_project(
    s3: Any,
    bucket: str,
    key: str,
    max_bytes: int,
    *,
    max_unzipped_bytes: int = DEFAULT_MAX_UNZIPPED_MB * MiB,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ProjectSummary:
    where = f"s3://{bucket}/{key}"
    if not key.endswith(".zip"):
        raise ProjectRejected(
            f"{where} is not a .zip: upload the project as `zip -r <name>.zip <project folder>`"
        )
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
        if not archive.infolist():
            raise ProjectRejected(f"{where} is an empty zip: zip the DeepLabCut project folder itself")
        _refuse_unsafe_paths(archive.infolist(), where)
        members = project_members(archive.infolist())
        check_sizes(members, where, max_unzipped_bytes, max_ratio)
        root = _project_root(members, where)
        config = _read_config(archive, members, root, where)
        bodyparts = _bodyparts(config, where)
        label_files, frames = _check_labels(archive, members, root, config, bodyparts, where)
    return ProjectSummary(
        root, str(config.get("Task", "")), bodyparts, frames, label_files, size, reader.bytes_read
    )


def entry_name(info: zipfile.ZipInfo) -> str | None:
    """The entry's path once extracted on Linux (`/` separators, UTF-8), or None for OS clutter to skip.

    Python decodes a name stored without the UTF-8 flag as cp437 (APPNOTE.TXT appendix D); macOS's
    Archive Utility and 7-Zip store UTF-8 without the flag: such a name that is valid UTF-8 is UTF-8.
    """
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass  # really cp437 (old Windows tools): keep Python's decoding
    name = name.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if not parts or parts[0] in SKIPPED_FOLDERS or parts[-1].startswith("._") or parts[-1] in SKIPPED_FILES:
        return None
    return name


def project_members(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The project's entries by their normalised name (`entry_name`), OS clutter left out."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = entry_name(info)
        if name is not None:
            members[name] = info
    return members


def check_sizes(
    members: dict[str, zipfile.ZipInfo], where: str, max_unzipped_bytes: int, max_ratio: float
) -> None:
    """Bound what the job would inflate, from the central directory (nothing is inflated here)."""
    total = sum(info.file_size for info in members.values())
    if total > max_unzipped_bytes:
        raise ProjectRejected(
            f"{where} inflates to {total / MiB:.1f} MiB, over the {max_unzipped_bytes / MiB:.0f} MiB limit "
            "(param max_unzipped_mb): leave the videos out of the zip (training reads labeled-data only) or "
            "raise max_unzipped_mb"
        )
    for name, info in members.items():
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_FLOOR_BYTES and ratio > max_ratio:
            raise ProjectRejected(
                f"{where}: {name} inflates {ratio:.0f}x ({info.compress_size} -> {info.file_size} bytes), "
                f"over the {max_ratio:g}x limit (param max_zip_ratio): that is not a DeepLabCut project file "
                "(a zip bomb?); rebuild the zip from the project folder, or raise max_zip_ratio if the file "
                "is real"
            )


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


def _project_root(members: dict[str, zipfile.ZipInfo], where: str) -> str:
    configs = sorted(
        (name for name in members if PurePosixPath(name).name == "config.yaml"),
        key=lambda name: name.count("/"),
    )
    if not configs:
        raise ProjectRejected(
            f"{where} has no config.yaml: zip the whole DeepLabCut project folder (the one "
            "create_new_project made, with config.yaml and labeled-data/)"
        )
    parent = str(PurePosixPath(configs[0]).parent)
    return "" if parent == "." else f"{parent}/"


def _read_config(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], root: str, where: str
) -> dict:
    import yaml

    info = members[f"{root}config.yaml"]
    if info.file_size > MAX_TEXT_BYTES:
        raise ProjectRejected(
            f"{where}: {root}config.yaml is {info.file_size} bytes, not a DeepLabCut config"
        )
    try:
        config = yaml.safe_load(archive.read(info))
    except yaml.YAMLError as error:
        raise ProjectRejected(
            f"{where}: {root}config.yaml is not valid YAML ({error}): fix it in the lab"
        ) from None
    if not isinstance(config, dict):
        raise ProjectRejected(f"{where}: {root}config.yaml is not a DeepLabCut config (no key: value pairs)")
    if not isinstance(config.get("scorer"), str) or not config["scorer"].strip():
        raise ProjectRejected(
            f"{where}: {root}config.yaml has no scorer: DeepLabCut reads labeled-data/<video>/"
            "CollectedData_<scorer>.csv; set `scorer:` to the name the labels were saved under"
        )
    if not isinstance(config.get("video_sets"), dict) or not config["video_sets"]:
        raise ProjectRejected(
            f"{where}: {root}config.yaml lists no video_sets: DeepLabCut trains on the labeled-data folders "
            "of the videos it lists; add the labeled videos (deeplabcut.add_new_videos) before zipping"
        )
    return config


def video_stem(path: str) -> str:
    """The labeled-data folder DeepLabCut reads for a video_sets entry, whichever OS wrote its path."""
    return PurePosixPath(str(path).replace("\\", "/")).stem


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


def _check_labels(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    root: str,
    config: dict,
    bodyparts: list[str],
    where: str,
) -> tuple[int, int]:
    labeled = f"{root}labeled-data/"
    names = set(members)
    if not any(name.startswith(labeled) and not name.endswith("/") for name in names):
        raise ProjectRejected(
            f"{where} has no labeled-data/: extract and label frames (deeplabcut.extract_frames, "
            "label_frames) before zipping the project"
        )
    label_names = sorted(
        n
        for n in names
        if n.startswith(labeled)
        and n.count("/") == labeled.count("/") + 1
        and PurePosixPath(n).name.startswith("CollectedData_")
        and PurePosixPath(n).suffix in (".csv", ".h5")
    )
    if not label_names:
        raise ProjectRejected(
            f"{where}: labeled-data/ holds no CollectedData_<scorer>.csv/.h5: save the labels in the "
            "labeling GUI before zipping"
        )
    scorer = config["scorer"]
    videos = {video_stem(path) for path in config["video_sets"]}
    folders = {PurePosixPath(n).parent.name for n in label_names}
    read = sorted(folder for folder in folders if folder in videos)  # what DeepLabCut reads
    if not read:
        raise ProjectRejected(
            f"{where}: DeepLabCut reads labeled-data/<video>/ only for the videos of config.yaml's "
            f"video_sets ({sorted(videos)}), and the labels are in {sorted(folders)}: list the labeled "
            "videos under video_sets (deeplabcut.add_new_videos) or fix the folder names"
        )
    files = frames = 0
    for folder in read:
        wanted = [f"{labeled}{folder}/CollectedData_{scorer}{suffix}" for suffix in (".csv", ".h5")]
        present = [name for name in wanted if name in names]
        if not present:
            others = [PurePosixPath(n).name for n in label_names if PurePosixPath(n).parent.name == folder]
            raise ProjectRejected(
                f"{where}: labeled-data/{folder}/ holds {others}, but config.yaml's scorer is {scorer!r} and "
                f"DeepLabCut reads CollectedData_{scorer}.csv/.h5 only: set `scorer:` in config.yaml to the "
                "labels' scorer, or save the labels again under this scorer"
            )
        files += len(present)
        csv_name = wanted[0]
        if csv_name not in names:
            continue  # H5 only: its table is read by DeepLabCut in the job
        label_parts, images = _label_images(archive, members[csv_name], csv_name, where)
        missing, extra = sorted(set(bodyparts) - set(label_parts)), sorted(set(label_parts) - set(bodyparts))
        if missing or extra:
            raise ProjectRejected(
                f"{where}: {csv_name} labels the bodyparts {sorted(set(label_parts))}, config.yaml lists "
                f"{bodyparts} (missing from the labels: {missing}, not in the config: {extra}): DeepLabCut "
                "keeps only the config's bodyparts; make `bodyparts:` in config.yaml the labeled ones, or "
                "relabel the frames"
            )
        for image in images:
            path = f"{root}{image}"
            if path not in names:
                raise ProjectRejected(
                    f"{where}: {csv_name} labels {image}, which is not in the zip: add the frame, or delete "
                    "its labels in the labeling GUI and save again"
                )
            frames += 1
    return files, frames


def _label_images(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, where: str
) -> tuple[list[str], list[str]]:
    """(bodyparts, image paths relative to the project) of a DeepLabCut label CSV: header rows
    (scorer, [individuals,] bodyparts, coords), then one row per image."""
    if info.file_size > MAX_TEXT_BYTES:
        raise ProjectRejected(f"{where}: {name} is {info.file_size} bytes, too large for a label file")
    text = io.TextIOWrapper(archive.open(info), encoding="utf-8-sig", newline="")
    try:
        rows = list(csv.reader(text))
    except UnicodeDecodeError:
        raise ProjectRejected(
            f"{where}: {name} is not UTF-8 text: save the labels again from DeepLabCut"
        ) from None
    header_rows = next((i for i, row in enumerate(rows) if row and row[0] == "coords"), None)
    if header_rows is None:
        raise ProjectRejected(f"{where}: {name} is not a DeepLabCut label file (no `coords` header row)")
    bodypart_row = next((row for row in rows[:header_rows] if row and row[0] == "bodyparts"), None)
    if bodypart_row is None:
        raise ProjectRejected(f"{where}: {name} is not a DeepLabCut label file (no `bodyparts` header row)")
    label_parts = list(dict.fromkeys(part for part in bodypart_row[1:] if part))
    images = []
    for row in rows[header_rows + 1 :]:
        if not row or not row[0]:
            continue
        if row[0] == "labeled-data" and len(row) > 2 and row[1] and row[2]:  # index as 3 columns
            images.append(f"labeled-data/{row[1]}/{row[2]}")
        else:  # index as one path column (a Windows lab's backslashes are folders too)
            images.append(row[0].replace("\\", "/"))
    return label_parts, images
