"""How alike the five pipelines are (docs/architecture.md, "One pipeline shape"), from the source alone.

Per pipeline: the lines of its DAG file, the modules of its plugin package (plugins/orchard/<dag_id>/), and
the task bodies in the DAG file longer than the template's ~10 lines (a task body is a function the DAG file
decorates with ``@task``/``@task.<kind>``/``@setup``/``@teardown``; its lines are the code lines of the body,
docstring, comments and blank lines not counted).

    .venv/bin/python benchmarks/pipeline_shape.py            # this checkout
    .venv/bin/python benchmarks/pipeline_shape.py --rev a2a4151   # a commit, read with `git show`

No timing: the figures are counts, the same on every run.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("pose_training", "auto_labeling", "aerial_pretraining", "fruit_features", "edge_deployment")
TASK_DECORATORS = {"task", "setup", "teardown"}
BODY_LIMIT = 10


def _read(path: str, rev: str | None) -> str | None:
    if rev is None:
        file = REPO_ROOT / path
        return file.read_text() if file.exists() else None
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO_ROOT, capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def _modules(dag_id: str, rev: str | None) -> list[str]:
    folder = f"plugins/orchard/{dag_id}"
    if rev is None:
        names = [p.name for p in (REPO_ROOT / folder).glob("*.py")]
    else:
        listed = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{rev}:{folder}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        names = [n for n in listed.stdout.split() if n.endswith(".py")]
    return sorted(n.removesuffix(".py") for n in names if n != "__init__.py")


def _is_task(decorator: ast.expr) -> bool:
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    while isinstance(node, ast.Attribute):  # @task.branch, @task.virtualenv
        node = node.value
    return isinstance(node, ast.Name) and node.id in TASK_DECORATORS


def _code_lines(function: ast.FunctionDef, source_lines: list[str]) -> int:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    lines = source_lines[body[0].lineno - 1 : body[-1].end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def long_task_bodies(source: str) -> dict[str, int]:
    """The task functions of a DAG file whose bodies exceed BODY_LIMIT code lines, with their sizes."""
    lines = source.splitlines()
    return {
        node.name: size
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
        and any(_is_task(d) for d in node.decorator_list)
        and (size := _code_lines(node, lines)) > BODY_LIMIT
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rev", help="a git revision to measure instead of the working tree")
    args = parser.parse_args(argv)
    print(f"pipeline shape at {args.rev or 'the working tree'} (task bodies over {BODY_LIMIT} code lines)")
    print("| pipeline | DAG file lines | plugin modules | task bodies > 10 lines |")
    print("|---|---|---|---|")
    for dag_id in PIPELINES:
        source = _read(f"dags/{dag_id}.py", args.rev)
        if source is None:
            print(f"| {dag_id} | (no DAG file) | | |")
            continue
        long = long_task_bodies(source)
        listed = ", ".join(f"{name} ({size})" for name, size in sorted(long.items())) or "none"
        modules = _modules(dag_id, args.rev)
        print(
            f"| {dag_id} | {len(source.splitlines())} | {len(modules)}: {', '.join(modules)} "
            f"| {len(long)}: {listed} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
