"""Imported by the scheduler's forkserver before it forks task processes (`[scheduler] mp_forkserver_preload`,
local_aws/stack/environment.py TASK_PRELOAD_MODULES): fills orchard.aws_session's shared botocore loader with
the JSON the tasks' AWS clients load, so every task inherits it parsed, copy-on-write, instead of parsing
endpoints.json and its services' models again before its first call (docs/architecture.md, "A task's first
AWS client").

A forkserver survives only an ImportError of a preloaded module (multiprocessing.forkserver.main): any other
error here would stop every task from starting, so the warm-up logs its error and leaves the loader cold.
"""

from __future__ import annotations

import logging

# the provider before orchard.aws_session: base_aws resolves the session factory while it is imported
import airflow.providers.amazon.aws.hooks.base_aws  # noqa: F401

from orchard.aws_session import session_data_path, warm_shared_loader

# The services orchard's tasks make clients for (tests/plugins/test_aws_preload.py derives them from the code
# under plugins/ and dags/): sts for AssumeRole with the connection's role_arn, and each hook's client_type.
TASK_SERVICES = (
    "application-autoscaling",
    "batch",
    "cloudwatch",
    "ec2",
    "emr",
    "events",
    "iam",
    "iot",
    "kms",
    "logs",
    "s3",
    "sagemaker",
    "sagemaker-runtime",
    "secretsmanager",
    "sqs",
    "sts",
)

log = logging.getLogger(__name__)


def warm() -> None:
    try:
        warm_shared_loader(TASK_SERVICES, session_data_path())
    except Exception:  # a cold loader only costs time; a failed preload would cost every task
        log.exception("orchard.aws_preload: the shared botocore loader stays cold")


warm()
