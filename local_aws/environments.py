"""One Python environment per job image, built from the image folder's requirements.txt.

Built on first use (the sandbox's "image pull"), cached under ORCHARD_ENV_CACHE keyed by the
requirements' content, and never Airflow's own environment: job code sees only what its image has.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "orchard" / "envs"


def cache_dir() -> Path:
    return Path(os.environ.get("ORCHARD_ENV_CACHE", DEFAULT_CACHE))


def env_key(requirements: str, label: str, python: str | None = None) -> str:
    # The interpreter is part of the key: the host's version, or the path of the one asked for.
    interpreter = sys.version_info[:2] if python is None else python
    digest = hashlib.sha256(f"{interpreter}\n{requirements}".encode()).hexdigest()[:16]
    safe_label = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
    return f"{safe_label}-{digest}"


def ensure_env(
    requirements: str,
    label: str,
    log: Callable[[str], None] = print,
    setup: Callable[[Path], None] | None = None,
    python: str | None = None,
) -> Path:
    """Return the bin/ folder of a venv holding `requirements` (text of a requirements file).

    `setup(bin_dir)` runs once after the install (EMR bootstrap actions); its identity must be part
    of `requirements` (e.g. a comment with a digest) so a different setup gets its own environment.
    `python`: the interpreter the venv is made from (default: the host's, sys.executable).
    """
    target = cache_dir() / env_key(requirements, label, python)
    ready = target / ".ready"
    if ready.exists():
        return target / "bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per env, even across sandbox processes
        if not ready.exists():
            _build(target, requirements, log, python)
            if setup is not None:
                setup(target / "bin")
            ready.touch()
    return target / "bin"


def _build(target: Path, requirements: str, log: Callable[[str], None], python: str | None = None) -> None:
    shutil.rmtree(target, ignore_errors=True)
    log(f"[sandbox] building job environment {target.name} (first use; cached afterwards)")
    has_requirements = any(line.strip() and not line.lstrip().startswith("#") for line in requirements.splitlines())
    venv_cmd = [python or sys.executable, "-m", "venv", str(target)]
    if not has_requirements:
        venv_cmd.insert(3, "--without-pip")
    _run(venv_cmd, log)
    if has_requirements:
        requirements_file = target / "requirements.txt"
        requirements_file.write_text(requirements)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, "-r", str(requirements_file)], log)


def _run(cmd: list[str], log: Callable[[str], None]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        log(f"[sandbox] {line}")
    if result.returncode != 0:
        raise RuntimeError(f"building the job environment failed ({' '.join(cmd[:4])} ... exit {result.returncode})")
