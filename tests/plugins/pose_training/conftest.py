"""Fixtures of pose_training's plugin tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class Reads:
    settings: int = 0  # orchard.settings.load_settings calls: each looks up every Variable env lacks
    sessions: int = 0  # AWS sessions the provider built (credentials resolved, the role assumed)


@pytest.fixture
def reads(monkeypatch) -> Reads:
    """How often the code under test reads orchard's settings and opens an AWS session."""
    from airflow.providers.amazon.aws.hooks import base_aws

    import orchard.settings
    from orchard.pose_training import infra as pose_infra

    counted = Reads()
    load_settings = orchard.settings.load_settings
    create_session = base_aws.SessionFactory.create_session

    def counting_load(*args, **kwargs):
        counted.settings += 1
        return load_settings(*args, **kwargs)

    def counting_session(self, *args, **kwargs):
        counted.sessions += 1
        return create_session(self, *args, **kwargs)

    monkeypatch.setattr(orchard.settings, "load_settings", counting_load)
    monkeypatch.setattr(pose_infra, "load_settings", counting_load)  # imported by name at module level
    monkeypatch.setattr(base_aws.SessionFactory, "create_session", counting_session)
    return counted
