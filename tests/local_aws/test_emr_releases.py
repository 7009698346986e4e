"""The EMR release table: each label's Spark and nodes' python3; labels the sandbox cannot run."""

from __future__ import annotations

import subprocess

import pytest

from local_aws import emr_node_pip, emr_releases
from local_aws.environments import python_of_minor


def test_emr_7_releases_run_spark_3_5_on_python_3_9():
    release = emr_releases.lookup("emr-7.5.0")
    assert (release.spark, release.python, release.os) == ("3.5.2", "3.9", "Amazon Linux 2023")
    assert release.pyspark == "pyspark==3.5.2"
    assert {r.python for r in emr_releases.RELEASES.values()} == {"3.9"}
    assert all(r.spark.startswith("3.5.") for r in emr_releases.RELEASES.values())


@pytest.mark.parametrize(
    ("label", "names"),
    [
        ("emr-6.15.0", ["emr-6.15.0", "Amazon Linux 2", "python3 3.7", "emr-7.5.0"]),
        ("emr-7.99.0", ["emr-7.99.0", "not a known Amazon EMR release", "emr-7.13.0"]),
        ("7.5.0", ["'7.5.0'", "emr-<major>.<minor>.<patch>"]),
        (None, ["None", "emr-7.0.0"]),
    ],
)
def test_a_label_the_sandbox_cannot_run_names_itself_and_the_supported_ones(label, names):
    with pytest.raises(emr_releases.UnsupportedRelease) as error:
        emr_releases.lookup(label)
    for name in names:
        assert name in str(error.value)


def test_the_release_python_is_found_by_version_not_by_shim():
    python = python_of_minor("3.9")
    if python is None:
        pytest.skip("no Python 3.9 on this machine (the sandbox then resolves bootstraps for 3.9)")
    assert "shims" not in python.path.parts
    out = subprocess.run(
        [str(python.path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "3.9"


def test_resolution_for_another_python_is_wheels_only_for_that_cpython_and_linux():
    args = emr_node_pip.download_args("3.9", ["--quiet", "--upgrade", "numpy==2.1.3"], "/tmp/x")
    assert "--only-binary=:all:" in args and "--upgrade" not in args
    assert args[args.index("--python-version") + 1] == "3.9"
    assert "cp39" in args and "manylinux_2_34_x86_64" in args and "manylinux_2_35_x86_64" not in args
    assert args[-1] == "numpy==2.1.3"


def test_ensure_env_builds_from_the_interpreter_asked_for_and_keys_by_it(tmp_path, monkeypatch):
    from local_aws import environments

    python = python_of_minor("3.9")
    if python is None:
        pytest.skip("no Python 3.9 on this machine")
    monkeypatch.setenv("ORCHARD_ENV_CACHE", str(tmp_path))
    host = environments.ensure_env("", "probe", log=lambda line: None)
    release = environments.ensure_env("", "probe", log=lambda line: None, python=python)
    assert host != release
    out = subprocess.run(
        [str(release / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "(3, 9)"
