"""Placeholder: replaced by the job engine (see below)."""


def install(endpoint_url: str) -> None:
    pass


def stop_all_jobs() -> None:
    pass
