"""What the stack puts into the sandbox before anything runs: roles, buckets, job code, demo data."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterable
from typing import Any

import local_aws
from local_aws.stack.environment import bucket_names, load_settings
from local_aws.stack.errors import StackError
from local_aws.stack.processes import _environ


def deploy_job_code(s3: Any, settings: Any) -> dict[str, dict]:
    """The deploy step (`make deploy`) against the sandbox: the job code AWS runs from S3, where the DAGs
    look for it (`orchard.job_code`)."""
    from deploy.job_code import DeployError, deploy

    try:
        return deploy(bucket=settings.artifacts_bucket, image_tag=settings.image_tag, s3=s3)
    except DeployError as error:
        raise StackError(f"the deploy step (make deploy) failed against the sandbox: {error}") from None


def seed(
    stack: Any,
    dag_ids: Iterable[str],
    failures: dict[str, str] | None = None,
    skip_upload: Iterable[str] = (),
) -> dict[str, dict]:
    """Create the roles and buckets the settings name and upload each DAG's demo data; the confs to run them
    with. DAGs in `skip_upload` get their roles but no demo data (`make up` with schedules off: an upload
    that starts a run would be consumed by the Asset watcher into a run that never starts).

    With `failures`, a DAG whose demo data fails to upload is left out of the confs and its traceback
    goes to `failures[dag_id]`, so the other DAGs still run; without it, the error is raised.
    """
    from local_aws import demo_data

    # the settings as the DAGs will see them: same ORCHARD_* environment, endpoint on the sandbox
    with _environ(local_aws.client_env(stack.sandbox_url)):
        settings = load_settings()
    from local_aws.iam_setup import DEMO_AIRFLOW_ROLE, IAM_FOLDER, create_pipeline_roles, settings_buckets

    dag_ids = list(dag_ids)
    with_policy = [d for d in dag_ids if (IAM_FOLDER / f"{d}.json").exists()]
    if with_policy:  # the roles Airflow and the jobs run as (include/iam), before anything runs
        create_pipeline_roles(
            stack.sandbox_url, with_policy, airflow_role=DEMO_AIRFLOW_ROLE, buckets=settings_buckets(settings)
        )
    s3 = stack.s3_client()
    for bucket in bucket_names(settings):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
    for name, manifest in deploy_job_code(s3, settings).items():
        stack.say(f"stack: deployed job code {name} → {manifest['prefix']}")
    skipped = set(skip_upload)
    uploaded = [d for d in dag_ids if d not in skipped]
    if failures is None:
        return demo_data.upload_all(s3, uploaded, settings)
    confs = {}
    for dag_id in uploaded:
        try:
            confs.update(demo_data.upload_all(s3, [dag_id], settings))
        except Exception:
            failures[dag_id] = traceback.format_exc()
    return confs
