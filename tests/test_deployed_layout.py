"""Static check of the deployed layout: Airflow-side code (dags/, plugins/) uses only what a deployment ships.

docker-compose and MWAA put `dags/` and `plugins/` on sys.path; `include/` (job code), `local_aws/` (the
sandbox), `deploy/` and `tests/` are not there. The dynamic counterpart, active while DAGs run in the e2e
tests, is tests/e2e/layout_guard.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_SIDE = [path for folder in ("dags", "plugins") for path in sorted((REPO_ROOT / folder).rglob("*.py"))]
NOT_SHIPPED = {"include", "local_aws", "deploy", "tests"}


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def include_paths(tree: ast.AST) -> list[int]:
    """Lines that build a path into include/: the string "include" as a path part, or "include/..."
    joined onto something (docstrings and messages that merely mention include/<name>/ are prose)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and str(side.value).split("/")[0] == "include":
                    lines.append(node.lineno)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "join",
            "joinpath",
            "Path",
            "PurePath",
            "open",
        ):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).split("/")[0] == "include":
                    lines.append(node.lineno)
    return lines


def test_there_is_airflow_side_code_to_check():
    names = {path.name for path in AIRFLOW_SIDE}
    assert {"aerial_pretraining.py", "fruit_features.py", "job_code.py", "endpoint.py"} <= names


@pytest.mark.parametrize("path", AIRFLOW_SIDE, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_airflow_side_code_imports_and_reads_only_what_is_deployed(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    bad_imports = [
        f"line {line}: {name}" for line, name in imported_packages(tree) if name.split(".")[0] in NOT_SHIPPED
    ]
    assert not bad_imports, (
        f"{path.relative_to(REPO_ROOT)} imports what a deployment does not ship ({', '.join(bad_imports)}): "
        "move Airflow-side logic into plugins/orchard/; job code runs in its image or from S3 (make deploy)"
    )
    assert not include_paths(tree), (
        f"{path.relative_to(REPO_ROOT)} builds a path into include/ (lines {include_paths(tree)}): include/ "
        "is not on the Airflow machine; compute the job code's S3 URIs with orchard.job_code (make deploy)"
    )


def test_the_checks_see_the_patterns_they_forbid():
    source = (
        "import include.x\nfrom local_aws import stack\nimport importlib\n"
        "importlib.import_module('deploy.job_code')\n"
        "from pathlib import Path\nROOT = Path(__file__).parent\nA = ROOT / 'include' / 'x'\n"
        "B = ROOT / 'include/fruit_features'\nC = Path('include', 'x')\nD = 'see include/edge_agent/'\n"
    )
    tree = ast.parse(source)
    assert sorted(imported_packages(tree)) == [
        (1, "include.x"),
        (2, "local_aws"),
        (3, "importlib"),
        (4, "deploy.job_code"),
        (5, "pathlib"),
    ]
    assert sorted(set(include_paths(tree))) == [7, 8, 9]  # line 10 only mentions include/ in prose
