"""The job roles the sandbox and plugin tests name (jobs run with their role's credentials)."""

from __future__ import annotations

import json

import boto3

# The roles the sandbox tests name, as an account would have them: trusted by their service, allowed the
# test buckets, logs and metrics (jobs now run with their role's credentials: local_aws/iam.py).
_TEST_JOB_ROLES = [
    ("orchard-sagemaker-execution", "sagemaker.amazonaws.com", False),
    ("x", "sagemaker.amazonaws.com", False),
    ("orchard-batch-job", "ecs-tasks.amazonaws.com", False),
    ("EMR_EC2_DefaultRole", "ec2.amazonaws.com", True),
]
_TEST_BUCKETS = (
    "ml-bucket",
    "results",
    "emr-bucket",
    "async-bucket",
    "edge",
    "data",
    "lab-uploads",
    "orchard-data",
    "orchard-artifacts",
    "roundtrip",
)
_TEST_JOB_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{b}{suffix}" for b in _TEST_BUCKETS for suffix in ("", "/*")],
        },
        {"Effect": "Allow", "Action": ["logs:*", "cloudwatch:PutMetricData"], "Resource": "*"},
    ],
}


def create_test_job_roles() -> None:
    """Create them in the sandbox (after a reset, which wipes IAM)."""
    iam = boto3.client("iam")
    for name, service, profile in _TEST_JOB_ROLES:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(
            RoleName=name, PolicyName="sandbox-tests", PolicyDocument=json.dumps(_TEST_JOB_POLICY)
        )
        if profile:
            iam.create_instance_profile(InstanceProfileName=name)
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
