"""What the machine needs before `make demo`, `make up` or `make test` start (issue 16.6): checked first, in a
second, each missing piece named with what to install — not found late as an obscure job failure (an EMR
step's "JAVA_HOME is not set", a job that cannot get its own mount namespace, a full disk mid-build).

`python -m local_aws prereqs` prints one line per check and exits 1 if any fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PYTHON = (3, 11)  # requirements.txt / constraints.txt are pinned for CPython 3.11 (Airflow side and jobs)
JAVA_MAJOR = 17  # Spark 3.5 (EMR 7.x) runs on Java 17: the sandbox's spark-submit for EMR steps
# A first build of the five pipelines' job environments into ~/.cache/orchard/envs measured 13 GiB (du, one
# of each: pose_training's PyTorch one 6.8 GiB, fruit_features' Spark/ONNX ones 2.7 GiB, edge 1.5 GiB,
# aerial 1.4 GiB, the SageMaker framework images' ~1 GiB): 15 GiB with room for logs and the sandbox's
# S3 data. Once the cache holds environments, a rebuild of one that changed: 4 GiB.
MIN_FREE_GIB_ENV = "ORCHARD_MIN_FREE_GIB"
FIRST_BUILD_GIB = 15.0
REBUILD_GIB = 4.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "MISSING"
        return f"  {mark:7} {self.name}: {self.detail}" + ("" if self.ok else f"\n          → {self.fix}")


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:2])) -> Check:
    shown = ".".join(map(str, version[:2]))
    ok = tuple(version[:2]) == PYTHON
    return Check(
        "Python 3.11",
        ok,
        f"this interpreter is Python {shown} ({sys.executable})",
        "install Python 3.11 (apt-get install python3.11 python3.11-venv, or pyenv install 3.11) and "
        "recreate the venv: make distclean && make venv PYTHON=python3.11",
    )


def java_major(version_output: str) -> int | None:
    """The major version in `java -version` output: `version "17.0.15"` → 17, `"1.8.0_392"` → 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> Check:
    fix = (
        f"install Java {JAVA_MAJOR} (apt-get install openjdk-{JAVA_MAJOR}-jre-headless) or set JAVA_HOME to "
        f"a Java {JAVA_MAJOR}: the sandbox runs EMR steps with spark-submit (fruit_features)"
    )
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH and JAVA_HOME is not set"
        return Check(f"Java {JAVA_MAJOR}", False, where, fix)
    try:
        probe = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check(f"Java {JAVA_MAJOR}", False, f"{java} -version failed: {err}", fix)
    major = java_major(probe.stderr + probe.stdout)
    return Check(f"Java {JAVA_MAJOR}", major == JAVA_MAJOR, f"{java} is Java {major}", fix)


def check_unshare() -> Check:
    from local_aws.process import INSTALL_HINT, NamespaceUnavailable, _unshare

    try:
        command = _unshare()
    except NamespaceUnavailable as err:
        return Check("unshare (a mount namespace per job)", False, str(err).split(", so ")[0], INSTALL_HINT)
    return Check("unshare (a mount namespace per job)", True, " ".join(command))


def check_disk(min_free_gib: float | None = None) -> Check:
    from local_aws.environments import cache_dir

    folder = cache_dir()
    if min_free_gib is None:
        built = folder.is_dir() and any(
            p.is_dir() and p.name.startswith("pose-training-") for p in folder.iterdir()
        )
        min_free_gib = float(os.environ.get(MIN_FREE_GIB_ENV) or (REBUILD_GIB if built else FIRST_BUILD_GIB))
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free_gib = shutil.disk_usage(existing).free / 2**30
    return Check(
        f"disk space for job environments (≥ {min_free_gib:.0f} GiB free)",
        free_gib >= min_free_gib,
        f"{free_gib:.1f} GiB free on the filesystem of {folder}",
        f"free disk space there, or point ORCHARD_ENV_CACHE at a filesystem with room "
        f"({MIN_FREE_GIB_ENV} changes the threshold)",
    )


def run_checks() -> list[Check]:
    return [check_python(), check_java(), check_unshare(), check_disk()]


def main(say=print) -> int:
    checks = run_checks()
    failed = [c for c in checks if not c.ok]
    if not failed:
        free = checks[3].detail.split(" free")[0]
        say(f"prerequisites: ok (Python 3.11, Java {JAVA_MAJOR}, unshare, {free} free for job environments)")
        return 0
    say("prerequisites:")
    for check in checks:
        say(check.line())
    say(f"prerequisites: {len(failed)} missing — install them first (the list above says how)")
    return 1
