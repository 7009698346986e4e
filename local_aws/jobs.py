"""What every sandbox job shares: its stop signal, the endpoint it talks to, its scratch space."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from local_aws import client_env

_running: set[threading.Event] = set()
_lock = threading.Lock()
_endpoint_url = "http://127.0.0.1:4566"


def configure(endpoint_url: str) -> None:
    global _endpoint_url
    _endpoint_url = endpoint_url


def endpoint_url() -> str:
    return _endpoint_url


_ADMIN = object()


def aws_env(region: str, role_arn: Any = _ADMIN, service: str = "") -> dict[str, str]:
    """What a job's AWS SDK needs to reach this sandbox instead of AWS.

    With `role_arn` (the job's role: training/processing RoleArn, Batch jobRoleArn, the EMR instance
    profile's role, a model's ExecutionRoleArn), the job gets a session of that role, assumed by `service`
    (e.g. "sagemaker.amazonaws.com"), so IAM limits it to the role's policies; `role_arn=None` (a Batch job
    definition without jobRoleArn) gives no credentials at all, as on AWS. Without `role_arn`, the sandbox's
    administrator key (only for what the AWS service itself does, not for user code).
    Raises iam.JobRoleError (the job fails with its message) if the role does not exist or does not trust
    `service`.
    """
    env = {**client_env(_endpoint_url), "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    if role_arn is _ADMIN:
        return env
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    if role_arn is None:
        return env
    from local_aws import iam

    return {**env, **iam.role_session_env(region, str(role_arn), service)}


def profile_role(account_id: str, instance_profile: str | None) -> str | None:
    """The role of an EC2 instance profile (name or ARN), what software on the instance runs as."""
    from local_aws import iam_resources

    roles = iam_resources._profile_roles(account_id, instance_profile)
    return roles[0] if roles else None


def new_stop_signal() -> threading.Event:
    stop = threading.Event()
    with _lock:
        _running.add(stop)
    return stop


def release(stop: threading.Event) -> None:
    with _lock:
        _running.discard(stop)


def stop_all() -> None:
    """Stop every running job process (sandbox reset or shutdown)."""
    with _lock:
        signals = list(_running)
    for stop in signals:
        stop.set()


def jobs_root() -> Path:
    """The folder holding every job's workspace (ORCHARD_JOB_WORKDIR, else <tmp>/orchard-jobs)."""
    root = Path(os.environ.get("ORCHARD_JOB_WORKDIR", Path(tempfile.gettempdir()) / "orchard-jobs"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def workspace(kind: str, name: str) -> Path:
    """A fresh scratch folder for one job (the container's filesystem)."""
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{name[:40]}-", dir=jobs_root()))


RUNNERS = "/opt/orchard-sandbox"  # where jobs see the sandbox's runner scripts (mounted read-only)
RUNNERS_SOURCE = Path(__file__).resolve().parent


def runner(name: str) -> str:
    """The container path of one of the sandbox's runner scripts (mounted by `private_mounts`)."""
    return f"{RUNNERS}/{name}"


def private_mounts(root: Path, opt_ml: bool = True) -> dict[str, Path]:
    """A job's own filesystem, for `run_process(mounts=...)`: its workspace's opt/ml at /opt/ml, its
    own /tmp, and the other jobs' workspaces out of sight (an empty folder over the jobs root)."""
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    # The sandbox's own in-container runners (async_worker.py, inference_runner.py), read-only at a fixed
    # path: the job's private /tmp would hide them wherever the repository lives under /tmp.
    mounts = {"/tmp": tmp, RUNNERS: RUNNERS_SOURCE}
    if opt_ml:
        (root / "opt" / "ml").mkdir(parents=True, exist_ok=True)
        mounts["/opt/ml"] = root / "opt" / "ml"
    everything = jobs_root()
    if Path("/tmp") not in everything.parents:  # under /tmp the job's own /tmp already hides it
        empty = everything / ".empty"
        empty.mkdir(exist_ok=True)
        mounts[str(everything)] = empty
    return mounts


def discard(path: Path) -> None:
    if not os.environ.get("ORCHARD_KEEP_JOB_WORKDIR"):
        shutil.rmtree(path, ignore_errors=True)
