"""What an orchard image holds, derived from its Dockerfile: base Python, pinned pip installs, COPY'd files.

`docker build` runs on AWS's side of the line (the image pushed to ECR is what a job gets); here the
Dockerfile is interpreted instead, as far as it decides what job code can import and read:

* FROM — one of BASE_IMAGES (a small, pinned catalog): its Python version and the packages it ships.
  Any other base fails the job: the sandbox cannot know what that image holds.
* RUN pip install ... — pinned requirements (`name==version`) and `-r <file>` where <file> was COPY'd
  into the image before that RUN. Unpinned requirements fail: the image's content must be defined.
  Other RUN commands (apt-get, useradd) are not reproduced; the job log lists them.
* COPY/ADD <src>... <dest> — the image's WORKDIR holds exactly the files COPY'd into it: they are staged
  into a folder of their own (cached by content digest) that stands in for WORKDIR.
* ENTRYPOINT, CMD, WORKDIR, ENV — read by containers.read_dockerfile.

Dockerfile reference: https://docs.docker.com/reference/dockerfile/
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from local_aws import environments
from local_aws.images import ImageError

# Official Docker Hub python images (https://hub.docker.com/_/python): CPython of the tag's version, pip
# and nothing else importable. `python:3.11-slim`, `python:3.11.7-slim`, `python:3.12-bookworm`, ...
PYTHON_BASE = re.compile(
    r"^(?:docker\.io/)?(?:library/)?python:(?P<version>3\.\d+(?:\.\d+)?)(?:-[a-z0-9.-]+)?$"
)

# Other bases the project may use, with what they ship (Python version, pinned packages). None today:
# deeplabcut/deeplabcut:* ships a conda environment whose package list is not published per tag, so
# include/pose_training builds from python:3.11-slim with its frozen requirements instead.
BASE_IMAGES: dict[str, tuple[str, tuple[str, ...]]] = {}

PIP_OPTIONS_WITH_VALUE = {
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
}
REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")


class DockerfileError(ImageError):
    """The Dockerfile asks for something the sandbox cannot reproduce faithfully; the message says the fix."""


@dataclass
class ImageRecipe:
    base: str
    python: str  # "3.11" or "3.11.7", from the base image
    requirements: list[str] = field(default_factory=list)  # pinned, in install order
    files: dict[str, Path] = field(default_factory=dict)  # path under WORKDIR -> file of the build context
    workdir: str = "/"
    not_reproduced: list[str] = field(default_factory=list)  # RUN commands other than pip install


@dataclass(frozen=True)
class BuiltImage:
    folder: Path  # stands in for WORKDIR: exactly the COPY'd files
    bin_dir: Path  # the image's Python environment
    python: environments.Interpreter
    recipe: ImageRecipe


def base_image(reference: str, dockerfile: Path) -> tuple[str, tuple[str, ...]]:
    match = PYTHON_BASE.match(reference)
    if match:
        return match.group("version"), ()
    if reference in BASE_IMAGES:
        return BASE_IMAGES[reference]
    raise DockerfileError(
        f"CannotPullContainerError: {dockerfile}: base image FROM {reference!r} is not one the local sandbox "
        "knows the content of, so it cannot give the job what that image holds. Build from an official "
        "python:<version>[-slim] image with pinned `RUN pip install` lines, or add the base with its Python "
        "version and pinned package list to BASE_IMAGES in local_aws/dockerfiles.py."
    )


def interpret(folder: Path) -> ImageRecipe:
    dockerfile = folder / "Dockerfile"
    recipe: ImageRecipe | None = None
    for instruction, value in instructions(dockerfile.read_text()):
        if instruction == "FROM":  # multi-stage: only the last stage is the image
            reference = [w for w in value.split() if not w.startswith("--")][0]
            python, shipped = base_image(reference, dockerfile)
            recipe = ImageRecipe(base=reference, python=python, requirements=list(shipped))
        elif recipe is None:
            if instruction != "ARG":
                raise DockerfileError(f"{dockerfile}: {instruction} before FROM")
        elif instruction == "WORKDIR":
            recipe.workdir = str(PurePosixPath(recipe.workdir) / value.strip())
        elif instruction in ("COPY", "ADD"):
            _copy(recipe, folder, dockerfile, instruction, value)
        elif instruction == "RUN":
            _run(recipe, folder, dockerfile, value)
    if recipe is None:
        raise DockerfileError(f"{dockerfile} has no FROM")
    return recipe


def _copy(recipe: ImageRecipe, folder: Path, dockerfile: Path, instruction: str, value: str) -> None:
    words = _exec_or_shell_words(value)
    if any(w.startswith("--from") for w in words):
        raise DockerfileError(
            f"{dockerfile}: {instruction} --from (multi-stage copies) is not reproduced by the sandbox; "
            "build the files in the final stage or COPY them from the build context"
        )
    words = [w for w in words if not w.startswith("--")]
    *sources, dest = words
    dest_path = PurePosixPath(recipe.workdir) / dest
    for source in sources:
        if "://" in source:
            raise DockerfileError(
                f"{dockerfile}: {instruction} of a URL ({source}) is not reproduced; "
                "COPY a file of the build context"
            )
        matches = (
            sorted(p for p in folder.glob(source) if p.name != "Dockerfile")
            if any(c in source for c in "*?[")
            else [folder / source]
        )
        if not matches or not all(m.exists() for m in matches):
            raise DockerfileError(
                f"{dockerfile}: {instruction} {source}: no such file in the build context {folder}"
            )
        for match in matches:
            files = sorted(p for p in match.rglob("*") if p.is_file()) if match.is_dir() else [match]
            for file in files:
                inside = file.relative_to(match) if match.is_dir() else PurePosixPath(file.name)
                single_file = len(sources) == 1 and len(matches) == 1 and not match.is_dir()
                target = (
                    dest_path
                    if single_file and not dest.endswith("/") and dest not in (".", "./")
                    else dest_path / inside
                )
                _place(recipe, target, file)


def _place(recipe: ImageRecipe, target: PurePosixPath, file: Path) -> None:
    try:
        relative = target.relative_to(recipe.workdir)
    except ValueError:
        recipe.not_reproduced.append(f"COPY {file.name} -> {target} (outside WORKDIR {recipe.workdir})")
        return
    recipe.files[str(relative)] = file


def _run(recipe: ImageRecipe, folder: Path, dockerfile: Path, value: str) -> None:
    words = _exec_or_shell_words(value)
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", ";", "||"):
            commands.append([])
        else:
            commands[-1].append(word)
    for command in filter(None, commands):
        args = _pip_install_args(command)
        if args is None:
            recipe.not_reproduced.append(" ".join(command))
            continue
        _pip_install(recipe, folder, dockerfile, args)


def _pip_install_args(command: list[str]) -> list[str] | None:
    if command[:1] in (["pip"], ["pip3"]) or re.fullmatch(r"pip3\.\d+", command[0]):
        rest = command[1:]
    elif re.fullmatch(r"python(3(\.\d+)?)?", command[0]) and command[1:3] == ["-m", "pip"]:
        rest = command[3:]
    else:
        return None
    return rest[1:] if rest[:1] == ["install"] else None


def _pip_install(recipe: ImageRecipe, folder: Path, dockerfile: Path, args: list[str]) -> None:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-r", "--requirement") or arg.startswith("--requirement="):
            name = arg.split("=", 1)[1] if "=" in arg else args[index + 1]
            index += 1 if "=" in arg else 2
            _requirements_file(recipe, dockerfile, name)
            continue
        if arg in PIP_OPTIONS_WITH_VALUE:
            raise DockerfileError(
                f"{dockerfile}: pip option {arg} is not reproduced by the sandbox; "
                "install pinned packages from PyPI"
            )
        if not arg.startswith("-"):
            _add_requirement(recipe, dockerfile, arg)
        index += 1


def _requirements_file(recipe: ImageRecipe, dockerfile: Path, name: str) -> None:
    path = str(PurePosixPath(recipe.workdir) / name)
    inside = PurePosixPath(path).is_relative_to(recipe.workdir)
    source = recipe.files.get(str(PurePosixPath(path).relative_to(recipe.workdir))) if inside else None
    if source is None:
        raise DockerfileError(
            f"{dockerfile}: pip install -r {name}: {path} is not in the image at that point; "
            f"COPY {name} before the RUN that installs it"
        )
    for line in source.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            _add_requirement(recipe, source, line)


def _add_requirement(recipe: ImageRecipe, where: Path, requirement: str) -> None:
    requirement = requirement.replace(" ", "")
    if not REQUIREMENT.match(requirement):
        raise DockerfileError(
            f"{where}: requirement {requirement!r} is not pinned: an image's content must be defined; "
            "pin it as name==version"
        )
    recipe.requirements.append(requirement)


def build(folder: Path, label: str, log: Callable[[str], None]) -> BuiltImage:
    """The image of `folder`'s Dockerfile: its staged WORKDIR and its Python environment (cached)."""
    recipe = interpret(folder)
    python = environments.find_python(recipe.python)
    log(
        f"[sandbox] image {label}: FROM {recipe.base} -> Python {python.version}; "
        f"{len(recipe.requirements)} pinned packages; WORKDIR {recipe.workdir} holds {sorted(recipe.files)}"
    )
    if python.note:
        log(f"[sandbox] {python.note}")
    for command in recipe.not_reproduced:
        log(f"[sandbox] not reproduced from the Dockerfile: {command}")
    requirements = "".join(f"{r}\n" for r in recipe.requirements)
    bin_dir = environments.ensure_env(requirements, label=label, log=log, python=python)
    return BuiltImage(_stage(recipe, label), bin_dir, python, recipe)


def _stage(recipe: ImageRecipe, label: str) -> Path:
    digest = hashlib.sha256()
    for name, source in sorted(recipe.files.items()):
        digest.update(f"{name}\0".encode() + source.read_bytes() + b"\0")
    target = environments.cache_dir() / "images" / f"{label}-{digest.hexdigest()[:16]}"
    if (target / ".ready").exists():
        return target / "workdir"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".ready").exists():
            shutil.rmtree(target / "workdir", ignore_errors=True)
            (target / "workdir").mkdir()
            for name, source in recipe.files.items():
                destination = target / "workdir" / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
            (target / ".ready").touch()
    return target / "workdir"


def instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\s*\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, value = line.partition(" ")
            result.append((instruction.upper(), value.strip()))
    return result


def _exec_or_shell_words(value: str) -> list[str]:
    if value.startswith("["):
        import json

        return list(json.loads(value))
    return shlex.split(value, comments=True)
