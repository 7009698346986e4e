"""The job image: pinned base and packages, non-root, and the entry point the sandbox and AWS both run."""

from __future__ import annotations

from pathlib import Path

from local_aws import dockerfiles
from local_aws.containers import read_dockerfile
from local_aws.dockerfiles import instructions

FOLDER = Path(__file__).resolve().parents[3] / "include" / "pose_training"


def test_base_image_is_pinned_and_the_job_runs_as_a_non_root_user():
    lines = instructions((FOLDER / "Dockerfile").read_text())
    [base] = [value for instruction, value in lines if instruction == "FROM"]
    image, _, tag = base.strip().partition(":")
    assert image == "python" and tag.startswith("3.11")  # a base whose content the sandbox knows
    recipe = dockerfiles.interpret(FOLDER)  # every package pinned, from the COPY'd requirements.txt
    assert "deeplabcut==3.0.2" in recipe.requirements
    assert sorted(recipe.files) == ["dlc_train.py", "requirements.txt"]
    users = [value.strip() for instruction, value in lines if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert not any("privileged" in value for _, value in lines)


def test_entry_point_is_the_training_script_with_pretrained_weights_by_default():
    spec = read_dockerfile(FOLDER)
    assert spec.entrypoint + spec.cmd == ["python", "dlc_train.py"]
    assert spec.env["DLC_BACKBONE_WEIGHTS"] == "pretrained"  # on AWS; runs offline override it
    assert "deeplabcut==3.0.2" in (FOLDER / "requirements.txt").read_text().splitlines()
