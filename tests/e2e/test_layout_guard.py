"""The deployed-layout guard itself: it catches each way Airflow-side code could depend on the repository."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.layout_guard import FORBIDDEN_PATHS, LayoutGuard, LayoutViolation

INCLUDE_FILE = FORBIDDEN_PATHS[0] / "fruit_features" / "bootstrap.sh"


@pytest.fixture
def plugin(tmp_path):
    """A module that stands for Airflow-side code: a file under a folder the guard treats as plugins/."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "fake_plugin.py").write_text(
        textwrap.dedent(
            f"""
            import importlib
            from pathlib import Path

            def import_local_aws():
                import local_aws  # already imported by the sandbox: only the import hook sees it

            def import_include_late():
                return importlib.import_module("include.fruit_features_export")

            def from_import():
                from include.auto_labeling import inference

            def read_with_path():
                return Path({str(INCLUDE_FILE)!r}).read_bytes()

            def read_with_open():
                with open({str(INCLUDE_FILE)!r}, "rb") as f:
                    return f.read()

            def list_folder():
                return list(Path({str(INCLUDE_FILE.parent)!r}).iterdir())

            def swallowed():
                try:
                    import local_aws.stack
                except ImportError:
                    return "ignored"

            def allowed():
                import json, orchard.settings
                return json.dumps({{"ok": True}})
            """
        )
    )
    sys.path.insert(0, str(folder))
    sys.modules.pop("fake_plugin", None)
    module = importlib.import_module("fake_plugin")
    yield folder, module
    sys.path.remove(str(folder))
    sys.modules.pop("fake_plugin", None)


@pytest.mark.parametrize(
    "action",
    [
        "import_local_aws",
        "import_include_late",
        "from_import",
        "read_with_path",
        "read_with_open",
        "list_folder",
    ],
)
def test_each_violation_is_refused_and_recorded(plugin, action):
    folder, module = plugin
    import local_aws  # noqa: F401 - as in the e2e session, where the sandbox runs in this process

    with LayoutGuard(airflow_side=[folder]) as guard, pytest.raises(LayoutViolation):
        getattr(module, action)()
    assert len(guard.violations) == 1 and "fake_plugin.py" in guard.violations[0]
    assert "make deploy" in guard.report() and "plugins/orchard/" in guard.report()


def test_a_swallowed_violation_is_still_recorded_and_allowed_code_runs(plugin):
    folder, module = plugin
    with LayoutGuard(airflow_side=[folder]) as guard:
        assert module.swallowed() == "ignored"
        assert module.allowed() == '{"ok": true}'
    assert guard.violations == [f"{folder / 'fake_plugin.py'} imports local_aws.stack"]


def test_code_outside_airflow_may_read_include_and_the_guard_leaves_no_trace(plugin):
    folder, module = plugin
    with LayoutGuard(airflow_side=[folder]) as guard:
        assert INCLUDE_FILE.read_bytes()  # the sandbox and tests read include/: not Airflow-side
        import local_aws.stack  # noqa: F401
    assert guard.violations == []
    assert module.read_with_path() == INCLUDE_FILE.read_bytes()  # inactive: no effect


def test_the_pipelines_airflow_side_is_what_the_guard_watches():
    from tests.e2e import layout_guard

    assert {p.name for p in layout_guard.AIRFLOW_SIDE} == {"dags", "plugins"}
    assert all(p.is_dir() for p in (*layout_guard.AIRFLOW_SIDE, *FORBIDDEN_PATHS))
    assert Path(layout_guard.REPO_ROOT / "include").resolve() == FORBIDDEN_PATHS[0]
