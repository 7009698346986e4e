"""Fixtures of auto_labeling's plugin tests."""

from __future__ import annotations

from tests.plugins.auto_labeling.counting import in_flight, reads  # noqa: F401 (fixtures)
from tests.plugins.auto_labeling.inputs import data  # noqa: F401 (fixture)
