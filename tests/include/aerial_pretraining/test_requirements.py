"""Script mode's requirements.txt adds to the PyTorch framework image; it must not replace what the image has.

SageMaker's training toolkit runs `pip install -r requirements.txt` of the source dir on the framework image
before the entry point: a `torch==` pin there reinstalls torch over the image's CUDA / SMDDP build, a
different numpy replaces the one the image's packages were built against. The image's content is the pinned
catalog local_aws/framework_images.py (from the DLC release's Dockerfile).
"""

from __future__ import annotations

import re
from pathlib import Path

from local_aws import framework_images, images
from orchard.aerial_pretraining.plan import pytorch_image
from tests.dag_files import load_dag_module

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = ROOT / "include" / "aerial_pretraining" / "requirements.txt"
DAG_FILE = ROOT / "dags" / "aerial_pretraining.py"


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = re.split(r"(==|>=|<=|~=|>|<)", line, maxsplit=1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def _image_release() -> framework_images.Release:
    params = {key: param.value for key, param in load_dag_module(DAG_FILE).PARAMS.items()}
    uri = pytorch_image(params, "us-east-1", params["pretrain_instance_type"])
    _, release, _ = framework_images.release_of(images.resolve(uri))
    return release


def test_script_mode_requirements_do_not_replace_the_images_framework_or_packages():
    release = _image_release()
    image_has = _pins("\n".join([f"{release.framework}=={release.version}", *release.packages]))
    asked = _pins(REQUIREMENTS.read_text())
    replaced = {
        name: (asked[name], image_has[name])
        for name in asked.keys() & image_has.keys()
        if asked[name] != image_has[name]
    }
    assert release.framework not in asked, f"requirements.txt reinstalls {release.framework}: {asked}"
    assert not replaced, f"requirements.txt replaces the image's packages (asked, image has): {replaced}"
    assert {"pyarrow", "tifffile"} <= asked.keys()  # what the job needs and the image lacks


def test_the_prepare_image_still_installs_torch_and_numpy():
    # include/aerial_pretraining/Dockerfile builds from python:3.11-slim: it adds what the PyTorch image has.
    dockerfile = (ROOT / "include" / "aerial_pretraining" / "Dockerfile").read_text()
    assert re.search(r"RUN pip install .*torch==[\d.]+ .*numpy==[\d.]+ .*-r requirements.txt", dockerfile)
