"""One Python environment per job image: the image's Python version and a pinned install list.

Built on first use (the sandbox's "image pull"), cached under ORCHARD_ENV_CACHE keyed by the Python
version, the install list and (for a layered environment) its base, and never Airflow's own environment:
job code sees only what its image has. What an image holds is derived elsewhere (local_aws/dockerfiles.py
for orchard images, local_aws/framework_images.py for AWS's); this module only builds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local_aws.images import ImageError

DEFAULT_CACHE = Path.home() / ".cache" / "orchard" / "envs"


def cache_dir() -> Path:
    return Path(os.environ.get("ORCHARD_ENV_CACHE", DEFAULT_CACHE))


PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))


class BuildFailed(ImageError, RuntimeError):
    """Building an image's environment failed (pip could not install its pinned packages)."""


class NoInterpreter(ImageError):
    """No Python of the version an image needs is installed here; the message says which exist."""


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # "3.11.7"
    note: str = ""  # why this is not exactly the version asked for (said in the job log)

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def _installed_pythons() -> dict[str, Path]:
    found = {".".join(map(str, sys.version_info[:3])): Path(sys.executable)}
    for folder in sorted(PYENV_ROOT.glob("versions/3.*")):
        match = re.fullmatch(r"(3\.\d+)\.(\d+)", folder.name)
        binary = folder / "bin" / f"python{match.group(1)}" if match else None
        if binary and binary.exists():
            found[folder.name] = binary
    for minor in range(7, 14):  # a python3.X on PATH (not a pyenv shim, which may run another version)
        on_path = shutil.which(f"python3.{minor}")
        if (
            on_path
            and "shims" not in Path(on_path).parts
            and not any(v.startswith(f"3.{minor}.") for v in found)
        ):
            found[f"3.{minor}"] = Path(on_path)
    return found


def python_of_minor(version: str) -> Interpreter | None:
    """The newest installed Python of `version`'s minor release (3.9 for "3.9" or "3.9.18"), or None."""
    wanted = tuple(int(p) for p in version.split(".")[:2])
    installed = _installed_pythons()
    same_minor = sorted(
        (v for v in installed if tuple(map(int, v.split(".")[:2])) == wanted),
        key=lambda v: tuple(map(int, v.split("."))),
    )
    return Interpreter(installed[same_minor[-1]], same_minor[-1]) if same_minor else None


def find_python(version: str) -> Interpreter:
    """The interpreter for an image's Python: the exact X.Y.Z, else the newest X.Y, else the nearest minor.

    A different patch or minor release is used but said (`note`), as the brief for the images asks.
    """
    installed = _installed_pythons()
    if version in installed:
        return Interpreter(installed[version], version)
    wanted = tuple(int(p) for p in version.split(".")[:2])
    same_minor = python_of_minor(version)
    if same_minor:
        note = (
            ""
            if version.count(".") == 1
            else f"Python {version} is not installed here; using {same_minor.version}"
        )
        return Interpreter(same_minor.path, same_minor.version, note)
    if not installed:
        raise NoInterpreter(f"no Python is installed here for Python {version}")
    chosen = min(installed, key=lambda v: (abs(int(v.split(".")[1]) - wanted[1]), -int(v.split(".")[1])))
    return Interpreter(
        installed[chosen],
        chosen,
        f"Python {version} is not installed here (have {', '.join(sorted(installed))}); "
        f"using the nearest, {chosen}",
    )


def env_key(requirements: str, label: str, python: str | None = None, base: Path | None = None) -> str:
    version = python or str(sys.version_info[:2])
    digest = hashlib.sha256(f"{version}\n{base or ''}\n{requirements}".encode()).hexdigest()[:16]
    safe_label = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
    return f"{safe_label}-{digest}"


def ensure_env(
    requirements: str,
    label: str,
    log: Callable[[str], None] = print,
    setup: Callable[[Path], None] | None = None,
    python: Interpreter | None = None,
    base: Path | None = None,
) -> Path:
    """Return the bin/ folder of a venv holding `requirements` (text of a requirements file).

    `python` is the image's interpreter (default: the sandbox's own Python). `base` (the bin/ folder of
    another environment built by this function) layers this one on top of it, as `pip install` in a
    container adds to what the image already has: the base's packages stay importable, and the new
    requirements are installed into this environment only (the base, shared by other jobs, is untouched).
    `setup(bin_dir)` runs once after the install (EMR bootstrap actions); its identity must be part
    of `requirements` (e.g. a comment with a digest) so a different setup gets its own environment.
    """
    interpreter = python or Interpreter(Path(sys.executable), ".".join(map(str, sys.version_info[:3])))
    target = cache_dir() / env_key(requirements, label, interpreter.version, base)
    ready = target / ".ready"
    if ready.exists():
        return target / "bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per env, even across sandbox processes
        if not ready.exists():
            _build(target, requirements, log, interpreter, base)
            if setup is not None:
                setup(target / "bin")
            ready.touch()
    return target / "bin"


def _build(
    target: Path, requirements: str, log: Callable[[str], None], interpreter: Interpreter, base: Path | None
) -> None:
    shutil.rmtree(target, ignore_errors=True)
    log(
        f"[sandbox] building job environment {target.name} on Python {interpreter.version} "
        "(first use; cached afterwards)"
    )
    has_requirements = any(
        line.strip() and not line.lstrip().startswith("#") for line in requirements.splitlines()
    )
    venv_cmd = [str(interpreter.path), "-m", "venv", str(target)]
    if not has_requirements:
        venv_cmd.insert(3, "--without-pip")
    _run(venv_cmd, log)
    if base is not None:  # the base environment's packages, after this one's (.pth lines append to sys.path)
        base_sites = "".join(f"{p}\n" for p in _site_packages(base.parent))
        for site in _site_packages(target):
            (site / "_orchard_base_image.pth").write_text(base_sites)
    if has_requirements:
        requirements_file = target / "requirements.txt"
        requirements_file.write_text(requirements)
        pip = [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]
        _run([*pip, "-r", str(requirements_file)], log)


def _site_packages(env_root: Path) -> list[Path]:
    return sorted(env_root.glob("lib/python3.*/site-packages"))


def _run(cmd: list[str], log: Callable[[str], None]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        log(f"[sandbox] {line}")
    if result.returncode != 0:
        raise BuildFailed(
            f"CannotPullContainerError: building the job environment failed "
            f"({' '.join(cmd[:4])} ... exit {result.returncode})"
        )
