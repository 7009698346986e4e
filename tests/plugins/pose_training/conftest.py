"""Fixtures of pose_training's plugin tests."""

from __future__ import annotations

import pytest

from tests.plugins.reads import Reads, count_reads


@pytest.fixture
def reads(monkeypatch) -> Reads:
    """How often the code under test reads orchard's settings and opens an AWS session."""
    from orchard.pose_training import infra as pose_infra

    return count_reads(monkeypatch, pose_infra)  # infra imported load_settings by name
