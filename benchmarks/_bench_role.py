"""The role the benchmarks' jobs, models and compilations run as.

The sandbox runs every job with its role's credentials (docs/sandbox.md, IAM): the role must exist, trust
the service that assumes it, and allow what the job does. The benchmarks' jobs only touch S3, logs and
metrics in a sandbox of their own.
"""

from __future__ import annotations

import json

NAME = "bench"
SERVICES = ["sagemaker.amazonaws.com", "batch.amazonaws.com", "ecs-tasks.amazonaws.com"]


def create_bench_role(iam) -> str:
    """Create the role with `iam` (a boto3 IAM client on the sandbox, admin credentials); return its ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": SERVICES}}],
    }
    arn = iam.create_role(RoleName=NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=NAME,
        PolicyName=NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:*", "logs:*", "cloudwatch:PutMetricData"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    return arn
