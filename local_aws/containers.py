"""What `docker run <image> <command>` means here: a process in the image's environment.

The image folder's Dockerfile (when there is one) gives the ENTRYPOINT, CMD, WORKDIR and ENV the
real container would have, and (local_aws/dockerfiles.py) its content: a staged folder holding exactly the
files COPY'd into WORKDIR, bound at WORKDIR (`Container.mounts`: the process runs in its own mount
namespace, local_aws/process.py), and `python` is a venv of the base image's Python with the Dockerfile's
pinned pip installs. AWS framework images get their catalogued content (local_aws/framework_images.py).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_aws import dockerfiles, framework_images
from local_aws.environments import ensure_env
from local_aws.images import JobImage

CODE_WORKDIR = "/opt/program"  # where an image folder without a Dockerfile is mounted
PYTHON_NAMES = {"python", "python3", *(f"python3.{minor}" for minor in range(6, 15))}
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
    for instruction, value in dockerfiles.instructions(dockerfile.read_text()):
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
    install_requirements: bool = False,
) -> Container:
    """Build the image's environment if needed and return the process to run.

    `code_dir` replaces the image folder for framework images (the unpacked submit directory);
    `entrypoint` overrides the Dockerfile's ENTRYPOINT, as `docker run --entrypoint` does.
    `install_requirements`: install `code_dir/requirements.txt` on top of a framework image, as the
    SageMaker training and inference toolkits do (script mode); processing and Batch jobs install nothing.
    """
    folder, bin_dir = _image_environment(image, code_dir, log, install_requirements)
    spec = read_dockerfile(image.folder) if image.folder else DockerfileSpec()
    argv = [*(entrypoint or spec.entrypoint), *(command if command else spec.cmd)]
    if not argv:
        raise ValueError(f"image {image.uri} has no ENTRYPOINT or CMD and the job gives no command")
    argv = [str(bin_dir / "python") if token in PYTHON_NAMES else token for token in argv]
    # The image's code at its WORKDIR, e.g. /opt/program, as the real container has it; a folder with no
    # Dockerfile (no WORKDIR) at CODE_WORKDIR, so no job reads it from the host's disk (its /tmp is private).
    target = spec.workdir if spec.workdir != "/" or image.folder is None else CODE_WORKDIR
    mounts = {target: folder} if target != "/" else {}
    workdir = target.rstrip("/") if mounts else str(folder)
    if image.folder and (folder != image.folder or mounts):  # a path into the build context: the image's copy
        argv = [
            f"{workdir}/{Path(t).relative_to(image.folder)}" if Path(t).is_relative_to(image.folder) else t
            for t in argv
        ]
    if not argv[0].startswith("/") and (folder / argv[0]).is_file():  # e.g. SageMaker's `train` in WORKDIR
        argv[0] = f"{workdir}/{argv[0]}"
    host = {name: os.environ[name] for name in HOST_VARIABLES if name in os.environ}
    job_env = {
        **host,
        **spec.env,
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(bin_dir.parent),
    }
    return Container(argv=argv, cwd=folder, env=job_env, mounts=mounts)


def _image_environment(
    image: JobImage, code_dir: Path | None, log: Callable[[str], None], install_requirements: bool
) -> tuple[Path, Path]:
    """(the folder standing in for the image's WORKDIR, the bin/ folder of the image's Python)."""
    label = image.repository.rsplit("/", 1)[-1]
    if image.folder is not None and (image.folder / "Dockerfile").exists():
        built = dockerfiles.build(image.folder, label, log)  # the image's content: its Dockerfile only
        return built.folder, built.bin_dir
    if image.folder is not None:
        # A folder without a Dockerfile is no image AWS could run (edge devices' code bundle, test models):
        # its requirements.txt is its environment, on the sandbox's Python.
        requirements_file = image.folder / "requirements.txt"
        requirements = requirements_file.read_text() if requirements_file.exists() else ""
        log(f"[sandbox] {image.folder.name} has no Dockerfile: running it with its requirements.txt")
        return image.folder, ensure_env(requirements, label=label, log=log)
    if code_dir is None:
        raise ValueError(f"{image.uri} is an AWS framework image: the job must name its code (script mode)")
    framework = framework_images.environment(image, log)
    requirements_file = code_dir / "requirements.txt"
    requirements = requirements_file.read_text() if requirements_file.exists() else ""
    if not install_requirements or not requirements.strip():
        return code_dir, framework.bin_dir
    # sagemaker-training toolkit: `pip install -r requirements.txt` of the source dir before the entry point
    # (https://github.com/aws/sagemaker-training-toolkit, modules.install / "requirements.txt").
    log("[sandbox] installing the source dir's requirements.txt on top of the image (as AWS's toolkit does)")
    bin_dir = ensure_env(
        requirements, label=f"{label}-code", log=log, python=framework.python, base=framework.bin_dir
    )
    return code_dir, bin_dir
