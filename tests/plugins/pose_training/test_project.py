"""validate_project refuses each broken DeepLabCut zip, before anything billable, naming the fix.

Real projects from Linux, Windows and macOS tools (the second half): validation accepts what DeepLabCut can
use (the job normalises it the same way) and refuses the rest naming the real cause; sizes are bounded
before inflating. Each such case runs the Airflow-side check (`orchard.pose_training.project`) AND the
job's own extraction and checks (`include/pose_training/dlc_train.py`, stdlib-only until DeepLabCut is
imported): both must agree, so validation lets through exactly what the job then accepts.
"""

from __future__ import annotations

import importlib.util
import io
import os
import stat
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from local_aws.demo_data import pose_training as tiny
from orchard.errors import InputError
from orchard.pose_training.project import MiB, ProjectRejected, validate_project

BUCKET = "lab-uploads"
ROOT = tiny.PROJECT
JOB_FILE = Path(__file__).resolve().parents[3] / "include" / "pose_training" / "dlc_train.py"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def upload(s3, body: bytes, key: str = "projects/p.zip") -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def files(drop: str = "", replace: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None):
    for name, content in tiny.project_files():
        if drop and drop in name:
            continue
        yield name, (replace or {}).get(name, content)
    yield from (extra or {}).items()


def test_the_tiny_project_passes_without_reading_the_whole_zip(s3):
    long_video = os.urandom(3 * MiB)  # incompressible: the zip is over 3 MiB
    body = tiny.project_zip(files(extra={f"{ROOT}/videos/long.avi": long_video}))
    key = upload(s3, body)
    summary = validate_project(s3, BUCKET, key, max_bytes=50 * MiB)
    assert summary.root == f"{ROOT}/"
    assert summary.bodyparts == ["head", "tail"]
    assert summary.labeled_frames == 8
    # the video and the PNGs are never read: only the central directory, config.yaml and the CSV
    assert summary.zip_bytes == len(body) and summary.bytes_read < 512 * 1024


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"PK\x03\x04 this is not really a zip", "is not a zip file"),
        (b"", "is not a zip file"),
    ],
)
def test_not_a_zip(s3, body, message):
    with pytest.raises(ProjectRejected, match=message):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=MiB)


def test_empty_zip(s3):
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    with pytest.raises(ProjectRejected, match="empty zip"):
        validate_project(s3, BUCKET, upload(s3, buffer.getvalue()), max_bytes=MiB)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../etc/cron.d/evil", r"outside the project \(`\.\.`, zip-slip\)"),
        (f"{ROOT}/labeled-data/../../escape.txt", "zip-slip"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
    ],
)
def test_unsafe_paths(s3, name, message):
    body = tiny.project_zip(files(extra={name: b"x"}))
    with pytest.raises(ProjectRejected, match=message):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=10 * MiB)


def test_symbolic_link(s3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in tiny.project_files():
            archive.writestr(name, content)
        link = zipfile.ZipInfo(f"{ROOT}/labeled-data/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")
    with pytest.raises(ProjectRejected, match="symbolic link"):
        validate_project(s3, BUCKET, upload(s3, buffer.getvalue()), max_bytes=10 * MiB)


def test_no_config(s3):
    with pytest.raises(ProjectRejected, match="has no config.yaml"):
        validate_project(
            s3, BUCKET, upload(s3, tiny.project_zip(files(drop="config.yaml"))), max_bytes=10 * MiB
        )


@pytest.mark.parametrize("bodyparts", ["bodyparts: []\n", "bodyparts:\n", ""])
def test_config_without_bodyparts(s3, bodyparts):
    config = (
        "".join(
            line + "\n"
            for line in tiny.config_yaml().splitlines()
            if not line.startswith(("bodyparts", "- head", "- tail"))
        )
        + bodyparts
    )
    body = tiny.project_zip(files(replace={f"{ROOT}/config.yaml": config.encode()}))
    with pytest.raises(ProjectRejected, match="defines no bodyparts"):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=10 * MiB)


def test_no_labeled_data(s3):
    with pytest.raises(ProjectRejected, match="has no labeled-data/"):
        validate_project(
            s3, BUCKET, upload(s3, tiny.project_zip(files(drop="labeled-data"))), max_bytes=10 * MiB
        )


def test_labels_without_a_label_file(s3):
    with pytest.raises(ProjectRejected, match="holds no CollectedData_"):
        validate_project(s3, BUCKET, upload(s3, tiny.project_zip(files(drop=".csv"))), max_bytes=10 * MiB)


def test_labels_referring_to_a_missing_frame(s3):
    body = tiny.project_zip(files(drop="img006.png"))
    with pytest.raises(
        ProjectRejected, match=r"labels labeled-data/tinymouse/img006.png, which is not in the zip"
    ):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=10 * MiB)


def test_zip_over_the_size_limit_is_refused_before_reading_it(s3):
    body = tiny.project_zip()
    key = upload(s3, body)
    with pytest.raises(ProjectRejected, match=r"over the 0 MiB limit \(param max_zip_mb\)"):
        validate_project(s3, BUCKET, key, max_bytes=len(body) - 1)


def test_missing_object_and_wrong_extension(s3):
    with pytest.raises(ProjectRejected, match="does not exist"):
        validate_project(s3, BUCKET, "projects/nothing.zip", max_bytes=MiB)
    with pytest.raises(ProjectRejected, match="is not a .zip"):
        validate_project(s3, BUCKET, upload(s3, b"x", key="projects/p.tar"), max_bytes=MiB)


# ---- real projects from Linux, Windows and macOS tools: the Airflow side and the job agree


def job_module():
    spec = importlib.util.spec_from_file_location("dlc_train_under_test", JOB_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class RawNameInfo(zipfile.ZipInfo):
    """An entry whose name is stored in `encoding` WITHOUT the UTF-8 flag, as macOS / 7-Zip / old tools do."""

    encoding = "utf-8"

    def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's name)
        return self.filename.encode(self.encoding), self.flag_bits & ~0x800


def build_zip(entries, raw_encoding: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            if raw_encoding:
                info = RawNameInfo(name)
                info.encoding = raw_encoding
            else:
                info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def renamed(video: str, separator: str = "/", config_edit=None, csv_edit=None):
    """The tiny project with its video (and labeled-data folder) called `video`, entries joined by
    `separator`."""
    for name, content in tiny.project_files():
        name = name.replace(f"/{tiny.VIDEO}", f"/{video}")
        if name.endswith((".yaml", ".csv")):
            text = content.decode().replace(f"{tiny.VIDEO}.avi", f"{video}.avi")
            text = text.replace(f"labeled-data,{tiny.VIDEO},", f"labeled-data,{video},")
            if name.endswith(".yaml") and config_edit:
                text = config_edit(text)
            if name.endswith(".csv") and csv_edit:
                name, text = csv_edit(name, text)
            content = text.encode()
        yield name.replace("/", separator), content


def check_both(s3, body: bytes, tmp_path: Path, **limits):
    """(airflow-side error or None, job-side error or None); each side's summary is checked as it goes."""
    s3.put_object(Bucket=BUCKET, Key="projects/p.zip", Body=body)
    airflow_error = job_error = None
    try:
        summary = validate_project(s3, BUCKET, "projects/p.zip", max_bytes=100 * MiB, **limits)
        assert summary.labeled_frames == 8 and summary.bodyparts == ["head", "tail"]
    except ProjectRejected as error:
        airflow_error = str(error)
    job = job_module()
    archive = tmp_path / "project.zip"
    archive.write_bytes(body)
    try:
        job_limits = {
            "max_unzipped_bytes": limits.get("max_unzipped_bytes", 8192 * MiB),
            "max_ratio": limits.get("max_ratio", 100),
        }
        job.safe_extract(archive, tmp_path / "project", **job_limits)
        config = job.find_config(tmp_path / "project")
        apply_edits(config, job.normalise_config(config))  # in the job: DeepLabCut's edit_config
        job.check_project(config)
    except job.JobError as error:
        assert error.exit_code == job.EXIT_BAD_INPUT == 65  # orchard.errors.INPUT_ERROR_EXIT_CODE
        job_error = str(error)
    return airflow_error, job_error


def apply_edits(config: Path, edits: dict) -> None:
    import yaml

    loaded = yaml.safe_load(config.read_bytes())
    config.write_text(yaml.safe_dump({**loaded, **edits}, sort_keys=False))


def windows_config(text: str) -> str:
    text = text.replace(f"/home/dlc/projects/{ROOT}/videos/", f"C:\\Users\\lab\\{ROOT}\\videos\\")
    text = text.replace(f"/home/dlc/projects/{ROOT}", f"C:\\Users\\lab\\{ROOT}")
    return text.replace("\n", "\r\n")


def test_windows_zip_with_backslashes_crlf_config_and_windows_paths_is_accepted_by_both(s3, tmp_path):
    body = build_zip(renamed(tiny.VIDEO, separator="\\", config_edit=windows_config))
    assert check_both(s3, body, tmp_path) == (None, None)
    job = job_module()
    config = job.find_config(tmp_path / "project")
    import yaml

    loaded = yaml.safe_load(config.read_text())
    # the job made the config what DeepLabCut on Linux reads: its video stems name the labeled folders
    assert [Path(key).stem for key in loaded["video_sets"]] == [tiny.VIDEO]


def test_macos_zip_with_unflagged_utf8_names_and_appledouble_files_is_accepted_by_both(s3, tmp_path):
    video = "souris-été"
    entries = list(renamed(video))
    clutter = [
        (f"__MACOSX/{ROOT}/._config.yaml", b"\x00\x05\x16\x07junk"),
        (f"{ROOT}/labeled-data/{video}/._CollectedData_orchard.csv", b"\x00\x05\x16\x07junk"),
        (f"{ROOT}/.DS_Store", b"Bud1junk"),
    ]
    body = build_zip(entries + clutter, raw_encoding="utf-8")
    assert check_both(s3, body, tmp_path) == (None, None)
    assert (tmp_path / "project" / ROOT / "labeled-data" / video / "img000.png").is_file()
    assert not list((tmp_path / "project").rglob("._*")) and not (tmp_path / "project" / "__MACOSX").exists()


def test_cp437_names_from_an_old_windows_tool_are_accepted_by_both(s3, tmp_path):
    body = build_zip(renamed("souris-é"), raw_encoding="cp437")
    assert check_both(s3, body, tmp_path) == (None, None)


def test_labels_of_another_scorer_are_refused_by_both_naming_the_scorer(s3, tmp_path):
    def other_scorer(name, text):
        return name.replace("CollectedData_orchard", "CollectedData_alice"), text

    airflow_error, job_error = check_both(s3, build_zip(renamed(tiny.VIDEO, csv_edit=other_scorer)), tmp_path)
    for error in (airflow_error, job_error):
        assert error and "CollectedData_alice.csv" in error and "scorer is 'orchard'" in error
    assert "s3://lab-uploads/projects/p.zip" in airflow_error


def test_labels_not_matching_the_config_bodyparts_are_refused_by_both(s3, tmp_path):
    def three_bodyparts(text):
        return text.replace("- tail\n", "- tail\n- paw\n", 1)

    airflow_error, job_error = check_both(
        s3, build_zip(renamed(tiny.VIDEO, config_edit=three_bodyparts)), tmp_path
    )
    for error in (airflow_error, job_error):
        assert error and "missing from the labels: ['paw']" in error


def test_labeled_folders_that_no_video_names_are_refused_by_both(s3, tmp_path):
    def other_video(text):
        return text.replace(f"{tiny.VIDEO}.avi", "othervideo.avi")

    body = build_zip(renamed(tiny.VIDEO, config_edit=other_video))
    airflow_error, job_error = check_both(s3, body, tmp_path)
    for error in (airflow_error, job_error):
        assert error and "video_sets" in error and "['tinymouse']" in error


def test_a_zip_bomb_entry_is_refused_from_the_central_directory_by_both(s3, tmp_path):
    bomb = (f"{ROOT}/videos/bomb.avi", b"\0" * (20 * MiB))  # deflates ~1000x
    body = build_zip([*tiny.project_files(), bomb])
    assert len(body) < MiB
    airflow_error, job_error = check_both(s3, body, tmp_path)
    for error in (airflow_error, job_error):
        assert error and "bomb.avi inflates" in error and "max_zip_ratio" in error
    assert not (tmp_path / "project").exists() or not list((tmp_path / "project").rglob("bomb.avi"))


def test_the_uncompressed_total_is_bounded_by_both(s3, tmp_path):
    body = build_zip([*tiny.project_files(), (f"{ROOT}/videos/long.avi", os.urandom(2 * MiB))])
    airflow_error, job_error = check_both(s3, body, tmp_path, max_unzipped_bytes=MiB)
    for error in (airflow_error, job_error):
        assert error and "over the 1 MiB limit" in error and "max_unzipped_mb" in error


def test_rejections_are_input_errors_that_airflow_does_not_retry():
    from airflow.sdk.exceptions import AirflowFailException

    assert issubclass(ProjectRejected, InputError) and issubclass(ProjectRejected, AirflowFailException)
