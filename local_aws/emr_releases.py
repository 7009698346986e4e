"""The EMR releases the sandbox runs: each label's Spark and its operating system's `python3`.

Sources (Amazon EMR Release Guide):
* Spark per release — "Spark release history",
  https://docs.aws.amazon.com/emr/latest/ReleaseGuide/Spark-release-history.html
  (emr-7.8.0 3.5.4-amzn-0, emr-7.9.0 3.5.5-amzn-0, emr-7.10.0 3.5.5-amzn-1, emr-7.11.0 3.5.6-amzn-0,
  emr-7.12.0 3.5.6-amzn-1, emr-7.13.0 3.5.6-amzn-2) and, for the same release line's Spark, the EMR
  Serverless release pages (e.g. "EMR Serverless 7.5.0": Apache Spark 3.5.2,
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/release-version-750.html).
* Python per release — "Application versions in Amazon EMR 7.x releases",
  https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-release-app-versions-7.x.html: row "Python":
  emr-7.0.0 "3.9"; emr-7.1.0 and later "3.9, 3.11" — `python3` on the nodes (Amazon Linux 2023) is 3.9,
  3.11 is an extra `python3.11` that a job must ask for (PYSPARK_PYTHON). emr-6.x nodes run Amazon
  Linux 2, whose `python3` is 3.7 (see "Amazon EMR 6.x release versions"); the sandbox does not run
  6.x (its Spark 3.x builds predate the Java 17 the sandbox has), so a 6.x label fails the cluster with
  VALIDATION_ERROR naming the supported labels.

The Spark version is the Apache release the -amzn build is based on; the sandbox installs that pyspark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    label: str
    spark: str  # Apache Spark version of the release's Spark (pyspark pin)
    python: str  # major.minor of the nodes' `python3`
    os: str

    @property
    def pyspark(self) -> str:
        return f"pyspark=={self.spark}"


_AL2023 = "Amazon Linux 2023"
_SPARK_7X = {
    "emr-7.0.0": "3.5.0",
    "emr-7.1.0": "3.5.0",
    "emr-7.2.0": "3.5.1",
    "emr-7.3.0": "3.5.1",
    "emr-7.4.0": "3.5.2",
    "emr-7.5.0": "3.5.2",
    "emr-7.6.0": "3.5.3",
    "emr-7.7.0": "3.5.3",
    "emr-7.8.0": "3.5.4",
    "emr-7.9.0": "3.5.5",
    "emr-7.10.0": "3.5.5",
    "emr-7.11.0": "3.5.6",
    "emr-7.12.0": "3.5.6",
    "emr-7.13.0": "3.5.6",
}
RELEASES: dict[str, Release] = {
    label: Release(label=label, spark=spark, python="3.9", os=_AL2023) for label, spark in _SPARK_7X.items()
}
# Release lines AWS has but the sandbox does not run, with their nodes' python3 (for the error message).
OTHER_LINES = {"emr-6": ("3.7", "Amazon Linux 2"), "emr-5": ("2.7 / 3.7", "Amazon Linux 2")}
LABEL = re.compile(r"^emr-\d+\.\d+\.\d+$")


class UnsupportedRelease(ValueError):
    """A ReleaseLabel the sandbox cannot run; the message names the label and the supported ones."""


def lookup(label: str | None) -> Release:
    release = RELEASES.get(label or "")
    if release is not None:
        return release
    supported = ", ".join(RELEASES)
    if not label or not LABEL.match(label):
        raise UnsupportedRelease(
            f"ReleaseLabel {label!r} is not an EMR release label (emr-<major>.<minor>.<patch>); "
            f"the sandbox runs: {supported}"
        )
    line = label.split(".")[0]
    if line in OTHER_LINES:
        python, os_name = OTHER_LINES[line]
        raise UnsupportedRelease(
            f"release {label} ({os_name}, python3 {python}) is not supported by the sandbox; "
            f"use an emr-7.x release ({supported})"
        )
    raise UnsupportedRelease(
        f"release {label} is not a known Amazon EMR release; the sandbox runs: {supported}"
    )
