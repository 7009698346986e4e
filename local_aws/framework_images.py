"""What AWS's framework images hold: a pinned catalog of the images the pipelines and tests name.

On AWS, a job on a Deep Learning Container or SageMaker framework image gets that image's Python and the
packages AWS installed in it, nothing else: `import tifffile` fails unless the job installs it. Here each
catalogued image is a cached environment of the tag's Python (or the nearest installed, said in the job
log) holding the framework and the main packages AWS lists for that release.

Sources (cited per entry):
* DLC images and tags: https://github.com/aws/deep-learning-containers/blob/master/available_images.md
* PyTorch 2.5 SageMaker DLC recipe (Python 3.11.9; torch 2.5.1+cpu, torchvision 0.20.1+cpu, numpy<2,
  opencv-python 4.11.0.86, conda boto3/scipy/pillow/h5py/psutil/pyyaml, pandas/scikit-learn,
  sagemaker-training): aws/deep-learning-containers pytorch/training/docker/2.5/py3/Dockerfile.cpu and
  pytorch/inference/docker/2.5/py3/Dockerfile.cpu. The conda packages are unpinned there; the versions below
  are the releases current when the 2.5.1 images were built (numpy: the last 1.x, as `numpy<2` resolves).
* SageMaker scikit-learn 1.2-1 (Python 3.9; scikit-learn 1.2.1, numpy 1.24.1, pandas 1.1.3):
  https://github.com/aws/sagemaker-scikit-learn-container (requirements.txt of the 1.2-1 release).

What differs, said in the job log: only CPU builds of torch can be installed here (GPU tags get the CPU build
of the same framework version), and where that exact CPU build is not on this machine's index the nearest
available one is used. The SageMaker toolkits (sagemaker-training, sagemaker-pytorch-inference, torchserve)
are not installed: the sandbox itself does their part (runs the entry point with SM_* variables, installs
the source dir's requirements.txt for script-mode training and inference, serves model_fn/predict_fn).
torchvision/torchaudio are not installed: the CPU torch build here has no matching torchvision wheel.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from local_aws import environments
from local_aws.images import ImageError, JobImage

DLC_IMAGES_PAGE = "https://github.com/aws/deep-learning-containers/blob/master/available_images.md"
# Where CPU builds of torch are found (pip's find-links on this machine); ORCHARD_CPU_WHEELS overrides.
CPU_WHEELS = Path(os.environ.get("ORCHARD_CPU_WHEELS", "/opt/wheels"))

_PYTORCH_25_PACKAGES = (
    "numpy==1.26.4",
    "scipy==1.14.1",
    "pillow==11.0.0",
    "pandas==2.2.3",
    "scikit-learn==1.5.2",
    "opencv-python==4.11.0.86",
    "boto3==1.35.63",
    "h5py==3.12.1",
    "psutil==6.1.0",
    "PyYAML==6.0.2",
)


@dataclass(frozen=True)
class Release:
    python: str  # the image's Python, e.g. "3.11"
    framework: str  # "torch" or "scikit-learn"
    version: str
    packages: tuple[str, ...]  # pinned, as AWS lists them (besides the framework)
    source: str
    not_installed: tuple[str, ...] = ()


# (repository, framework version) -> what that image holds. Tags are `<version>-<cpu|gpu>-py3XX[-...]`.
CATALOG: dict[tuple[str, str], Release] = {
    ("pytorch-training", "2.5.1"): Release(
        "3.11.9",
        "torch",
        "2.5.1",
        _PYTORCH_25_PACKAGES,
        "aws/deep-learning-containers pytorch/training/docker/2.5/py3/Dockerfile.cpu; " + DLC_IMAGES_PAGE,
        (
            "torchvision==0.20.1",
            "torchaudio==2.5.1",
            "fastai",
            "sagemaker-training",
            "sagemaker-pytorch-training",
        ),
    ),
    ("pytorch-inference", "2.5.1"): Release(
        "3.11.9",
        "torch",
        "2.5.1",
        _PYTORCH_25_PACKAGES,
        "aws/deep-learning-containers pytorch/inference/docker/2.5/py3/Dockerfile.cpu; " + DLC_IMAGES_PAGE,
        ("torchvision==0.20.1", "torchaudio==2.5.1", "torchserve", "sagemaker-pytorch-inference"),
    ),
    ("sagemaker-scikit-learn", "1.2-1"): Release(
        "3.9",
        "scikit-learn",
        "1.2.1",
        ("numpy==1.24.1", "pandas==1.1.3", "scipy==1.10.1", "boto3==1.28.57"),
        "https://github.com/aws/sagemaker-scikit-learn-container (1.2-1); "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/pre-built-docker-containers-scikit-learn-spark.html",
        ("sagemaker-training", "sagemaker-scikit-learn-container"),
    ),
}
VERSION_ALIASES = {("pytorch-training", "2.5"): "2.5.1", ("pytorch-inference", "2.5"): "2.5.1"}

PYTORCH_TAG = re.compile(r"^(?P<version>\d+\.\d+(?:\.\d+)?)-(?P<device>cpu|gpu)-py(?P<py>3)(?P<minor>\d+)\b")
SKLEARN_TAG = re.compile(r"^(?P<version>\d+\.\d+-\d+)(?:-cpu-py3)?$")


class UnknownFrameworkImage(ImageError):
    """A framework image tag the catalog does not hold; the message names the known ones."""


@dataclass
class FrameworkEnvironment:
    bin_dir: Path
    python: environments.Interpreter
    release: Release
    install: list[str]
    notes: list[str] = field(default_factory=list)


def release_of(image: JobImage) -> tuple[str, Release, list[str]]:
    """(label, release, notes) for a framework image URI; unknown repositories or tags fail clearly."""
    repository = image.repository.rsplit("/", 1)[-1]
    tag, notes = image.tag, []
    match = PYTORCH_TAG.match(tag) if repository.startswith("pytorch-") else SKLEARN_TAG.match(tag)
    version = match.group("version") if match else None
    version = VERSION_ALIASES.get((repository, version or ""), version)
    release = CATALOG.get((repository, version or ""))
    if match is None or release is None:
        known = ", ".join(f"{r}:{v}" for r, v in CATALOG)
        raise UnknownFrameworkImage(
            f"CannotPullContainerError: {image.uri}: the local sandbox does not know what AWS image "
            f"{repository}:{tag} holds (catalogued: {known}; tags like 2.5.1-cpu-py311). Use a catalogued "
            "image, or add the release to CATALOG in local_aws/framework_images.py from its DLC release "
            f"notes ({DLC_IMAGES_PAGE})."
        )
    if repository.startswith("pytorch-"):
        tag_python = f"{match.group('py')}.{match.group('minor')}"
        if tag_python != ".".join(release.python.split(".")[:2]):
            raise UnknownFrameworkImage(
                f"CannotPullContainerError: {image.uri}: {repository} {release.version} is built for "
                f"Python {release.python}, not py{tag_python.replace('.', '')}"
            )
        if match.group("device") == "gpu":
            notes.append(
                f"{repository}:{tag} is a GPU image; the sandbox has no GPU and installs the CPU "
                f"build of torch {release.version}"
            )
    # Labelled by framework, not repository: the training and inference images of a release share one env
    # when their catalogued content is the same (the cache key is the Python version and the install list).
    return f"{release.framework}-{release.version}", release, notes


def cpu_torch(version: str, python: str) -> tuple[str, str | None]:
    """The CPU torch build to install for `version` on `python`: exact if on the index, else the nearest."""
    cp = "cp" + python.replace(".", "")
    available = sorted(
        {
            m.group(1)
            for p in CPU_WHEELS.glob(f"torch-*+cpu-{cp}-*.whl")
            if (m := re.match(r"torch-([\d.]+)\+cpu-", p.name))
        },
        key=_version_key,
    )
    if version in available:
        return f"torch=={version}+cpu", None
    if not available:
        return f"torch=={version}", (
            f"no CPU build of torch is on this machine's index ({CPU_WHEELS}); "
            f"installing torch=={version} from PyPI"
        )
    nearest = min(available, key=lambda v: _distance(_version_key(v), _version_key(version)))
    return f"torch=={nearest}+cpu", (
        f"torch {version}+cpu is not on this machine's index ({CPU_WHEELS} has {', '.join(available)}); "
        f"using the nearest CPU build, torch {nearest}+cpu"
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    width = max(len(a), len(b))
    a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return tuple(abs(x - y) for x, y in zip(a, b, strict=True))


def environment(image: JobImage, log: Callable[[str], None]) -> FrameworkEnvironment:
    """Build (once, cached) and return the environment of an AWS framework image."""
    label, release, notes = release_of(image)
    python = environments.find_python(release.python)
    if python.note:
        notes.append(python.note)
    if release.framework == "torch":
        framework, note = cpu_torch(release.version, python.minor)
        if note:
            notes.append(note)
    else:
        framework = f"{release.framework}=={release.version}"
    install = [framework, *release.packages]
    log(
        f"[sandbox] AWS image {image.repository}:{image.tag}: Python {python.version}, {', '.join(install)} "
        f"(as AWS lists for this release: {release.source})"
    )
    if release.not_installed:
        log(
            f"[sandbox] not installed here (the sandbox does their part or they do not install on CPU): "
            f"{', '.join(release.not_installed)}"
        )
    for note in notes:
        log(f"[sandbox] {note}")
    bin_dir = environments.ensure_env("".join(f"{r}\n" for r in install), label=label, log=log, python=python)
    return FrameworkEnvironment(bin_dir, python, release, install, notes)
