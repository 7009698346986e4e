"""What `docker run <image> <command>` means here: a process in the image's environment.

The image folder's Dockerfile (when there is one) gives the ENTRYPOINT, CMD, WORKDIR and ENV the
real container would have; the folder is bound at WORKDIR (`Container.mounts`, the process runs in its
own mount namespace: local_aws/process.py), and `python` is the image's venv.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_aws.environments import ensure_env
from local_aws.images import JobImage

PYTHON_NAMES = {"python", "python3", "python3.11"}
# The host variables a container may see; everything else comes from the image and the job.
HOST_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME", "TZ")


@dataclass
class DockerfileSpec:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Container:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)  # container path -> host path


def read_dockerfile(folder: Path) -> DockerfileSpec:
    spec = DockerfileSpec()
    dockerfile = folder / "Dockerfile"
    if not dockerfile.exists():
        return spec
    for instruction, value in _instructions(dockerfile.read_text()):
        if instruction == "ENTRYPOINT":
            spec.entrypoint = _exec_form(value)
        elif instruction == "CMD":
            spec.cmd = _exec_form(value)
        elif instruction == "WORKDIR":
            spec.workdir = value.strip()
        elif instruction == "ENV":
            spec.env.update(_env_pairs(value))
        elif instruction == "FROM":
            spec = DockerfileSpec()  # multi-stage: only the last stage is the image
    return spec


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = text.replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, value = line.partition(" ")
            result.append((instruction.upper(), value.strip()))
    return result


def _exec_form(value: str) -> list[str]:
    if value.startswith("["):
        return list(json.loads(value))
    return ["/bin/sh", "-c", value]


def _env_pairs(value: str) -> dict[str, str]:
    parts = shlex.split(value)
    if len(parts) >= 2 and "=" not in parts[0]:
        return {parts[0]: " ".join(parts[1:])}  # legacy `ENV KEY value`
    return dict(part.split("=", 1) for part in parts if "=" in part)


def prepare(
    image: JobImage,
    command: Sequence[str] | None,
    env: dict[str, str],
    log: Callable[[str], None],
    code_dir: Path | None = None,
    entrypoint: Sequence[str] | None = None,
) -> Container:
    """Build the image's environment if needed and return the process to run.

    `code_dir` replaces the image folder for framework images (the unpacked submit directory);
    `entrypoint` overrides the Dockerfile's ENTRYPOINT, as `docker run --entrypoint` does.
    """
    folder = image.folder or code_dir
    if folder is None:
        raise ValueError(f"{image.uri} is an AWS framework image: the job must name its code (script mode)")
    requirements_file = folder / "requirements.txt"
    requirements = requirements_file.read_text() if requirements_file.exists() else ""
    bin_dir = ensure_env(requirements, label=image.repository.rsplit("/", 1)[-1], log=log)
    spec = read_dockerfile(folder) if image.folder else DockerfileSpec()
    argv = [*(entrypoint or spec.entrypoint), *(command if command else spec.cmd)]
    if not argv:
        raise ValueError(f"image {image.uri} has no ENTRYPOINT or CMD and the job gives no command")
    argv = [str(bin_dir / "python") if token in PYTHON_NAMES else token for token in argv]
    # The image's code at its WORKDIR, e.g. /opt/program, as the real container has it.
    mounts = {spec.workdir: folder} if spec.workdir != "/" else {}
    if not argv[0].startswith("/") and (folder / argv[0]).is_file():  # e.g. SageMaker's `train` in WORKDIR
        argv[0] = f"{spec.workdir.rstrip('/')}/{argv[0]}" if mounts else str(folder / argv[0])
    host = {name: os.environ[name] for name in HOST_VARIABLES if name in os.environ}
    job_env = {
        **host,
        **spec.env,
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(bin_dir.parent),
    }
    return Container(argv=argv, cwd=folder, env=job_env, mounts=mounts)
