"""What a task's code reads besides its answers: orchard's settings and AWS sessions, counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Reads:
    settings: int = 0  # orchard.settings.load_settings calls: each looks up every Variable env lacks
    sessions: int = 0  # AWS sessions the provider built (credentials resolved, the role assumed)


def count_reads(monkeypatch: Any, *modules: Any) -> Reads:
    """Count, until the test ends, orchard's settings reads (`orchard.settings.load_settings`, and the same
    function in `modules` that imported it by name) and the provider's AWS sessions."""
    from airflow.providers.amazon.aws.hooks import base_aws

    import orchard.settings

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
    for module in modules:
        monkeypatch.setattr(module, "load_settings", counting_load)
    monkeypatch.setattr(base_aws.SessionFactory, "create_session", counting_session)
    return counted
