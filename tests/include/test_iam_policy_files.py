"""Every pipeline ships its least-privilege IAM policy (docs/architecture.md, "Conventions for DAGs")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IAM = REPO / "include" / "iam"
PIPELINES = sorted(p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
POLICIES = sorted(IAM.glob("*.json"))


def statements(path: Path) -> list[dict]:
    policy = json.loads(path.read_text())
    assert policy["Version"] == "2012-10-17", f"{path.name}: Version must be 2012-10-17"
    return policy["Statement"]


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@pytest.mark.parametrize("dag_id", PIPELINES)
def test_each_pipeline_ships_its_policy_and_its_doc_points_to_it(dag_id):
    assert (IAM / f"{dag_id}.json").is_file(), f"include/iam/{dag_id}.json is missing"
    assert f"include/iam/{dag_id}.json" in (REPO / "dags" / f"{dag_id}.py").read_text(), "doc_md must name it"


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_no_wildcard_actions_and_pass_role_only_to_named_services(path):
    for statement in statements(path):
        assert statement["Effect"] in ("Allow", "Deny") and statement.get("Resource")
        for action in listed(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{path.name}: wildcard action {action}"
        if "iam:PassRole" in listed(statement["Action"]):
            services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
            assert services and all(s.endswith(".amazonaws.com") for s in listed(services)), path.name
            assert "*" != statement["Resource"], f"{path.name}: PassRole on every role"
