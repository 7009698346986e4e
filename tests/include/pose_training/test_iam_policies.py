"""The IAM policies pose_training ships: well-formed, least privilege where it matters."""

from __future__ import annotations

import json
from pathlib import Path

IAM = Path(__file__).resolve().parents[3] / "include" / "iam"
# Every AWS call the DAG's tasks and its operator make (orchard/pose_training/*, orchard/operators/batch.py,
# the provider's BatchOperator / BatchJobTrigger / log fetcher, the SQS Asset watcher).
CALLS = {
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:GetBucketNotification",
    "s3:PutBucketNotification",
    "events:PutRule",
    "events:PutTargets",
    "sqs:CreateQueue",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "batch:CreateComputeEnvironment",
    "batch:UpdateComputeEnvironment",
    "batch:CreateJobQueue",
    "batch:UpdateJobQueue",
    "batch:RegisterJobDefinition",
    "batch:SubmitJob",
    "batch:TerminateJob",
    "batch:DescribeComputeEnvironments",
    "batch:DescribeJobQueues",
    "batch:DescribeJobDefinitions",
    "batch:DescribeJobs",
    "batch:ListJobs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "logs:GetLogEvents",
    "iam:PassRole",
}


def actions(policy: dict) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        listed = statement["Action"]
        found.update([listed] if isinstance(listed, str) else listed)
    return found


def test_the_airflow_policy_allows_every_call_and_passes_roles_to_batch_only():
    policy = json.loads((IAM / "pose_training.json").read_text())
    assert CALLS <= actions(policy)
    assert not any("*" in action for action in actions(policy))
    [pass_role] = [s for s in policy["Statement"] if s["Action"] == "iam:PassRole"]
    assert "batch.amazonaws.com" in pass_role["Condition"]["StringEquals"]["iam:PassedToService"]
    assert "*" not in pass_role["Resource"]


def test_the_job_role_reads_projects_and_writes_models_only():
    policy = json.loads((IAM / "pose_training_job_role.json").read_text())
    assert actions(policy) == {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    [write] = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    assert write["Resource"] == "arn:aws:s3:::orchard-artifacts/pose_training/*"
