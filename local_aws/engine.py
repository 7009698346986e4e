"""Install the sandbox's job engine into moto: real job runs instead of instant fakes."""

from __future__ import annotations

from moto.moto_api._internal import models as moto_api

from local_aws import (
    async_endpoints,
    batch,
    edge,
    emr,
    hot_path,
    iam,
    jobs,
    labeling,
    latency,
    model_registry,
    s3_conditional,
    s3_events,
    sagemaker,
)

_installed = False


def install(endpoint_url: str) -> None:
    """Patch moto's backends once per process; jobs reach AWS (the sandbox) through `endpoint_url`."""
    global _installed
    jobs.configure(endpoint_url)
    if _installed:
        return
    batch.install()
    sagemaker.install()
    model_registry.install()  # UpdateModelPackage changes only the fields it is given (AWS's contract)
    emr.install()
    s3_events.install()  # GetBucketNotificationConfiguration shows EventBridgeConfiguration
    s3_conditional.install()  # a conditional PutObject is atomic: one write per key at a time
    edge.install()  # Neo compilation, IoT jobs + device side, simulated devices
    async_endpoints.install()  # invoke_endpoint_async runs the model's handler
    labeling.install()  # Ground Truth labeling jobs, under an explicit auto-accept policy
    latency.install()  # optional per-request latency (ORCHARD_SANDBOX_LATENCY_MS)
    hot_path.install()  # moto's per-request directory listing, read once
    iam.install()  # IAM enforced on every call not made with the administrator key (local_aws/iam.py)
    _stop_jobs_on_reset()
    _installed = True


def _stop_jobs_on_reset() -> None:
    """`POST /moto-api/reset` forgets every resource: the jobs still running go with them."""
    reset = moto_api.MotoAPIBackend.reset

    def reset_and_stop_jobs(self: moto_api.MotoAPIBackend) -> None:
        jobs.stop_all()
        reset(self)

    moto_api.MotoAPIBackend.reset = reset_and_stop_jobs


def stop_all_jobs() -> None:
    jobs.stop_all()
