"""plugins/.airflowignore keeps Airflow's plugin manager out of the orchard library, in both ignore syntaxes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
discovery = pytest.importorskip("airflow._shared.module_loading.file_discovery")
plugin_loader = pytest.importorskip("airflow._shared.plugins_manager.plugins_manager")

SENTINEL_PLUGIN = """
from airflow.plugins_manager import AirflowPlugin

class SentinelPlugin(AirflowPlugin):
    name = "orchard_sentinel"
"""


@pytest.mark.parametrize("syntax", ["glob", "regexp"])
def test_plugin_discovery_skips_the_orchard_library(syntax):
    found = list(discovery.find_path_from_directory(PLUGINS, ".airflowignore", syntax))
    assert not [path for path in found if "/orchard/" in path], found


@pytest.mark.parametrize("syntax", ["glob", "regexp"])
def test_plugin_loader_imports_real_plugins_but_not_orchard(tmp_path, syntax):
    folder = tmp_path / "plugins"
    shutil.copytree(PLUGINS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "sentinel_plugin.py").write_text(SENTINEL_PLUGIN)
    before = set(sys.modules)
    try:
        plugins, errors = plugin_loader._load_plugins_from_plugin_directory(
            str(folder), ignore_file_syntax=syntax
        )
        added = set(sys.modules) - before
    finally:
        for name in set(sys.modules) - before:  # the loader registers modules under bare names: undo that
            del sys.modules[name]

    assert sorted(p.name for p in plugins) == ["orchard_sentinel", "orchard_ui"]  # + plugins/orchard_ui.py
    assert errors == {}
    # Each file is registered under its bare stem: none of orchard's modules may show up.
    assert not {"settings", "naming", "pricing", "reports", "__init__"} & added
