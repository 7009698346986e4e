"""Install the sandbox's job engine into moto: real job runs instead of instant fakes."""

from __future__ import annotations

from local_aws import batch, emr, jobs, sagemaker

_installed = False


def install(endpoint_url: str) -> None:
    """Patch moto's backends once per process; jobs reach AWS (the sandbox) through `endpoint_url`."""
    global _installed
    jobs.configure(endpoint_url)
    if _installed:
        return
    batch.install()
    sagemaker.install()
    emr.install()
    _installed = True


def stop_all_jobs() -> None:
    jobs.stop_all()
