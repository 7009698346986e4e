"""`pip install` on a sandbox EMR node whose venv is NOT the release's Python (no such interpreter here).

Run as `python emr_node_pip.py <X.Y> <real python> <pip arguments...>` by the node's `python3`/`pip`
wrappers. For `install`, it first resolves the same requirements for the release's Python the way
pip does for another interpreter — `pip download --only-binary=:all: --python-version X.Y` for
CPython on manylinux x86_64 (glibc 2.34: Amazon Linux 2023) — and fails like pip on the node would
(exit 1, pip's "No matching distribution" message) when a pin has no wheel for that Python; only then
installs into the venv. Any other pip command runs unchanged. Standalone: no sandbox imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

# Options of `pip install` that `pip download` does not take (flags; none of them has a value).
INSTALL_ONLY_FLAGS = {
    "-U",
    "--upgrade",
    "--user",
    "--force-reinstall",
    "-I",
    "--ignore-installed",
    "--no-warn-script-location",
    "--no-warn-conflicts",
    "--compile",
    "--no-compile",
}
GLIBC_MINOR = 34  # Amazon Linux 2023


def platforms() -> list[str]:
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR, 4, -1)]
    return [*tags, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]


def download_args(version: str, install_args: list[str], dest: str) -> list[str]:
    nodot = version.replace(".", "")
    args = [
        "download",
        "--quiet",
        "--no-cache-dir",
        "--dest",
        dest,
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
        "--abi",
        f"cp{nodot}",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform in platforms():
        args += ["--platform", platform]
    return args + [a for a in install_args if a not in INSTALL_ONLY_FLAGS]


def main(argv: list[str]) -> int:
    version, python, pip_args = argv[0], argv[1], argv[2:]
    if pip_args[:1] == ["install"]:
        with tempfile.TemporaryDirectory(prefix="emr-resolve-") as dest:
            check = subprocess.run([python, "-m", "pip", *download_args(version, pip_args[1:], dest)])
        if check.returncode != 0:
            print(
                f"[sandbox] pip could not resolve these requirements for the release's Python {version} "
                f"(wheels only, as on the node): the bootstrap action fails as it would on EMR",
                file=sys.stderr,
            )
            return 1
    os.execv(python, [python, "-m", "pip", *pip_args])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
