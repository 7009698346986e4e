"""EMR in the sandbox: cluster lifecycle, bootstrap actions, spark-submit steps that write to S3."""

from __future__ import annotations

import gzip
import io

import boto3
import pyarrow.parquet as pq
import pytest

from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.polling import watch_states

BUCKET = "emr-bucket"
STEP_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@pytest.fixture
def cluster(aws):
    s3, emr = boto3.client("s3"), boto3.client("emr")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="input/words.txt", Body=b"apple\npear\nfig\n")
    s3.upload_file(str(TEST_JOB_ROOT / "spark_step" / "word_lengths.py"), BUCKET, "code/word_lengths.py")
    s3.upload_file(str(TEST_JOB_ROOT / "spark_step" / "bootstrap.sh"), BUCKET, "code/bootstrap.sh")
    cluster_id = emr.run_job_flow(
        Name="sandbox-cluster",
        ReleaseLabel="emr-7.5.0",
        LogUri=f"s3://{BUCKET}/logs/",
        Applications=[{"Name": "Spark"}],
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 3,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        BootstrapActions=[
            {"Name": "python-packages", "ScriptBootstrapAction": {"Path": f"s3://{BUCKET}/code/bootstrap.sh"}}
        ],
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    seen = watch_states(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"],
        {"WAITING", "TERMINATED_WITH_ERRORS"},
        timeout_s=600,
    )  # first use builds Spark's env
    # In lifecycle order, ending WAITING; a cached environment can make STARTING too brief for a poll to see.
    lifecycle = ["STARTING", "BOOTSTRAPPING", "WAITING"]
    assert seen == [state for state in lifecycle if state in seen] and seen[-1] == "WAITING"
    timeline = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["Timeline"]
    assert timeline["CreationDateTime"] <= timeline["ReadyDateTime"]
    return cluster_id


def add_step(cluster_id: str, args: list[str]) -> tuple[dict, list[str]]:
    emr = boto3.client("emr")
    step_id = emr.add_job_flow_steps(
        JobFlowId=cluster_id,
        Steps=[
            {
                "Name": "spark",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
            }
        ],
    )["StepIds"][0]
    describe = lambda: emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]  # noqa: E731
    seen = watch_states(lambda: describe()["Status"]["State"], STEP_TERMINAL, timeout_s=300)
    return describe(), seen


def test_a_spark_step_writes_parquet_back_to_s3(cluster):
    step, seen = add_step(
        cluster,
        [
            "spark-submit",
            "--deploy-mode",
            "cluster",
            f"s3://{BUCKET}/code/word_lengths.py",
            f"s3://{BUCKET}/input/",
            f"s3://{BUCKET}/output/lengths/",
        ],
    )

    assert seen[-2:] == ["RUNNING", "COMPLETED"]
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="output/lengths/")["Contents"]]
    parts = [k for k in keys if k.endswith(".parquet")]
    assert parts and not any(k.endswith(".crc") for k in keys)
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=parts[0])["Body"].read()))
    assert sorted(zip(table["word"].to_pylist(), table["length"].to_pylist())) == [
        ("apple", 5),
        ("fig", 3),
        ("pear", 4),
    ]


def test_a_failing_step_reports_its_error_and_log_file(cluster):
    step, seen = add_step(cluster, ["spark-submit", f"s3://{BUCKET}/code/word_lengths.py"])  # no arguments

    assert seen[-1] == "FAILED"
    details = step["Status"]["FailureDetails"]
    assert "IndexError" in details["Message"]
    bucket, _, key = details["LogFile"][5:].partition("/")
    log = gzip.decompress(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()).decode()
    assert "IndexError: list index out of range" in log


def test_terminating_the_cluster_ends_terminated(cluster):
    emr = boto3.client("emr")
    emr.terminate_job_flows(JobFlowIds=[cluster])

    seen = watch_states(
        lambda: emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"],
        {"TERMINATED", "TERMINATED_WITH_ERRORS"},
        timeout_s=30,
    )
    assert seen[-1] == "TERMINATED"


def test_an_unsupported_release_fails_the_cluster_with_a_reason(aws):
    emr = boto3.client("emr")
    cluster_id = emr.run_job_flow(
        Name="old",
        ReleaseLabel="emr-5.36.0",
        Instances={
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]

    watch_states(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"],
        {"TERMINATED_WITH_ERRORS"},
        timeout_s=30,
    )
    reason = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["StateChangeReason"]["Message"]
    assert "emr-5.36.0" in reason and "emr-7.x" in reason
