"""Which code a container image stands for.

On AWS an image is pulled from ECR; here an image names a folder of job code:
`<registry>/orchard/pose-training:<tag>` runs `include/pose_training/`. AWS's own framework images
(the SageMaker PyTorch training image, say) carry no code of ours: the job's `sagemaker_program`
from `sagemaker_submit_directory` is what runs, as in SageMaker script mode.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_NAMESPACE = "orchard/"

# Repositories of AWS Deep Learning Containers and SageMaker framework images (script mode).
FRAMEWORK_REPOSITORIES = re.compile(
    r"^(pytorch|tensorflow|huggingface-pytorch|mxnet)-(training|inference)(-neuronx?)?$"
    r"|^sagemaker-(scikit-learn|xgboost|pytorch)"
)


class ImageError(Exception):
    """An image the sandbox cannot give a job (unmapped, unknown content); the message says the fix."""


class UnmappedImage(ImageError):
    """An image that names no job folder; the message says how to map it."""


@dataclass(frozen=True)
class JobImage:
    uri: str
    repository: str
    folder: Path | None  # None for an AWS framework image (script mode)

    @property
    def is_framework(self) -> bool:
        return self.folder is None

    @property
    def tag(self) -> str:
        without_digest = self.uri.split("@", 1)[0]
        last = without_digest.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"


def job_roots() -> list[Path]:
    """Folders searched for job code: ORCHARD_JOB_ROOTS (os.pathsep-separated) before include/."""
    extra = [Path(p).resolve() for p in os.environ.get("ORCHARD_JOB_ROOTS", "").split(os.pathsep) if p]
    return [*extra, REPO_ROOT / "include"]


def repository_of(image_uri: str) -> str:
    """`123.dkr.ecr.us-east-1.amazonaws.com/orchard/pose-training:1.0` -> `orchard/pose-training`."""
    without_digest = image_uri.split("@", 1)[0]
    first, _, rest = without_digest.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else without_digest
    name, _, _tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    return name


def resolve(image_uri: str) -> JobImage:
    repository = repository_of(image_uri)
    if FRAMEWORK_REPOSITORIES.search(repository.rsplit("/", 1)[-1]):
        return JobImage(image_uri, repository, None)
    if repository.startswith(IMAGE_NAMESPACE):
        folder_name = repository[len(IMAGE_NAMESPACE) :].replace("-", "_")
        for root in job_roots():
            if (root / folder_name).is_dir():
                return JobImage(image_uri, repository, root / folder_name)
    raise UnmappedImage(
        f"CannotPullContainerError: image {image_uri!r} maps to no job folder in the local sandbox. "
        f"Name the image <registry>/{IMAGE_NAMESPACE}<name>:<tag> and put its code in include/<name with "
        f"'-' as '_'>/ (searched: {', '.join(str(r) for r in job_roots())}; ORCHARD_JOB_ROOTS adds folders), "
        "or use an AWS framework image with sagemaker_program / sagemaker_submit_directory."
    )
