"""A Batch job that succeeds: prints its environment's view and writes a marker object to S3."""

import os
import sys

import boto3

print(f"hello from batch job {os.environ['AWS_BATCH_JOB_ID']} on {sys.executable}")
print(f"GREETING={os.environ.get('GREETING')}")
bucket, key = os.environ["OUTPUT_BUCKET"], os.environ["OUTPUT_KEY"]
boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"done")
print(f"wrote s3://{bucket}/{key}")
