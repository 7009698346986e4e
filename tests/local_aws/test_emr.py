"""EMR in the sandbox: cluster lifecycle, bootstrap actions, spark-submit steps that write to S3."""

from __future__ import annotations

import gzip
import io
import time

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
    # A client-mode PySpark driver's stderr is merged into spark-submit's stdout (Spark's PythonRunner).
    log = read_log(details["LogFile"].replace("stderr.gz", "stdout.gz"))
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
    reason = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["StateChangeReason"]
    assert reason["Code"] == "VALIDATION_ERROR"
    assert "emr-5.36.0" in reason["Message"] and "emr-7.5.0" in reason["Message"]


def read_log(uri: str) -> str:
    bucket, _, key = uri[5:].partition("/")
    return gzip.decompress(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()).decode()


def test_the_step_runs_on_the_release_python_and_writes_the_three_step_logs(cluster):
    """emr-7.x nodes run python3 3.9 (Amazon Linux 2023): driver and executors, not the host's 3.11."""
    boto3.client("s3").upload_file(
        str(TEST_JOB_ROOT / "spark_step" / "python_version.py"), BUCKET, "code/python_version.py"
    )
    step, seen = add_step(cluster, ["spark-submit", f"s3://{BUCKET}/code/python_version.py"])

    assert seen[-1] == "COMPLETED"
    folder = f"s3://{BUCKET}/logs/{cluster}/steps/{step['Id']}"
    stdout, stderr, controller = (
        read_log(f"{folder}/{name}.gz") for name in ("stdout", "stderr", "controller")
    )
    assert "driver python 3.9" in stdout and "executor python 3.9\n" in stdout
    # spark-submit's own log (log4j, to stderr) apart from what the job prints
    assert "INFO SparkContext: Running Spark version 3.5.2" in stderr and "INFO SparkContext" not in stdout
    assert "command-runner.jar spark-submit" in controller
    assert "Step succeeded with exitCode 0" in controller and "node python3 = Python 3.9" in controller


def test_a_failed_step_points_at_its_stderr_and_says_so_in_the_controller_log(cluster):
    step, _ = add_step(cluster, ["spark-submit", f"s3://{BUCKET}/code/word_lengths.py"])  # no arguments

    details = step["Status"]["FailureDetails"]
    assert details["Reason"] == "Unknown Error."
    assert details["LogFile"] == f"s3://{BUCKET}/logs/{cluster}/steps/{step['Id']}/stderr.gz"
    controller = read_log(details["LogFile"].replace("stderr.gz", "controller.gz"))
    assert "Step failed with exitCode 1" in controller


def run_cluster(bootstrap: str | None, keep_alive: bool, steps: list[dict] | None = None) -> str:
    s3, emr = boto3.client("s3"), boto3.client("emr")
    s3.create_bucket(Bucket=BUCKET)
    actions = []
    if bootstrap:
        s3.upload_file(str(TEST_JOB_ROOT / "spark_step" / bootstrap), BUCKET, f"code/{bootstrap}")
        actions = [{"Name": "packages", "ScriptBootstrapAction": {"Path": f"s3://{BUCKET}/code/{bootstrap}"}}]
    return emr.run_job_flow(
        Name="codes",
        ReleaseLabel="emr-7.5.0",
        LogUri=f"s3://{BUCKET}/logs/",
        Applications=[{"Name": "Spark"}],
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": keep_alive,
        },
        BootstrapActions=actions,
        Steps=steps or [],
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]


def final_status(cluster_id: str, timeout_s: float = 600) -> dict:
    emr = boto3.client("emr")
    watch_states(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"],
        {"TERMINATED", "TERMINATED_WITH_ERRORS"},
        timeout_s=timeout_s,
    )
    return emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]


def assert_bootstrap_failure(cluster_id: str) -> None:
    status = final_status(cluster_id)
    assert status["State"] == "TERMINATED_WITH_ERRORS"
    assert status["StateChangeReason"]["Code"] == "BOOTSTRAP_FAILURE"
    message = status["StateChangeReason"]["Message"]
    assert message.startswith("On the master instance (i-")
    assert message.endswith("bootstrap action 1 returned a non-zero return code")
    steps = boto3.client("emr").list_steps(ClusterId=cluster_id)["Steps"]
    assert [s["Status"]["State"] for s in steps] == ["CANCELLED"]


STEP = {
    "Name": "never runs",
    "ActionOnFailure": "TERMINATE_CLUSTER",
    "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "s3://emr-bucket/none.py"]},
}


def test_a_pin_with_no_wheel_for_the_release_python_fails_the_bootstrap(aws):
    """numpy 2.1.3 needs Python >= 3.10: on EMR 7 (python3 3.9) the bootstrap fails, so here too."""
    assert_bootstrap_failure(run_cluster("bootstrap_py310_only.sh", keep_alive=True, steps=[STEP]))


def test_without_the_release_python_the_bootstrap_is_resolved_for_it(aws, monkeypatch):
    """No python3.9 on the machine: the venv is the host's, but pip installs are resolved for 3.9 first."""
    from local_aws import emr as sandbox_emr

    monkeypatch.setattr(sandbox_emr, "python_of_minor", lambda version: None)
    assert_bootstrap_failure(run_cluster("bootstrap_py310_only.sh", keep_alive=True, steps=[STEP]))


def test_state_change_codes_follow_aws(aws):
    emr = boto3.client("emr")
    done = run_cluster(None, keep_alive=False)
    status = final_status(done)
    assert (status["State"], status["StateChangeReason"]) == (
        "TERMINATED",
        {"Code": "ALL_STEPS_COMPLETED", "Message": "Steps completed"},
    )

    failed_step = run_cluster(None, keep_alive=True, steps=[STEP])
    status = final_status(failed_step)
    assert status["State"] == "TERMINATED_WITH_ERRORS"
    assert status["StateChangeReason"]["Code"] == "STEP_FAILURE"

    stopped = run_cluster(None, keep_alive=True)
    watch_states(
        lambda: emr.describe_cluster(ClusterId=stopped)["Cluster"]["Status"]["State"],
        {"WAITING"},
        timeout_s=300,
    )
    emr.terminate_job_flows(JobFlowIds=[stopped])
    status = final_status(stopped, timeout_s=30)
    assert (status["State"], status["StateChangeReason"]["Code"]) == ("TERMINATED", "USER_REQUEST")


def test_calls_on_a_cluster_emr_does_not_know_answer_invalid_request_not_a_500(aws):
    """Issue 14.3: moto answered DescribeStep/ListSteps/AddJobFlowSteps/TerminateJobFlows on an unknown
    cluster id with HTTP 500 (KeyError), which botocore and the provider's waiters retry without end; EMR
    answers InvalidRequestException "Cluster id '<id>' is not valid."."""
    from botocore.config import Config

    emr = boto3.client("emr", config=Config(retries={"max_attempts": 1}))
    calls = {
        "describe_step": {"ClusterId": "j-GONE", "StepId": "s-1"},
        "list_steps": {"ClusterId": "j-GONE"},
        "add_job_flow_steps": {
            "JobFlowId": "j-GONE",
            "Steps": [{"Name": "x", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}],
        },
        "terminate_job_flows": {"JobFlowIds": ["j-GONE"]},
        "describe_cluster": {"ClusterId": "j-GONE"},
    }
    for call, kwargs in calls.items():
        with pytest.raises(emr.exceptions.InvalidRequestException, match="Cluster id 'j-GONE' is not valid"):
            getattr(emr, call)(**kwargs)


def test_the_clusters_spark_defaults_reach_spark_submit_before_the_steps_own_conf():
    """EMR writes the spark-defaults classification to spark-defaults.conf, which spark-submit reads; a
    step's own --conf overrides it. The sandbox passes them as --conf first (moto keeps the request's
    dicts with transformed keys: the original property names must come through)."""
    from pathlib import Path

    from moto.core.parse import XFormedDict

    from local_aws.emr import spark_defaults, spark_submit_argv

    jvm = "-XX:TieredStopAtLevel=1"
    configurations = [
        XFormedDict(
            {"Classification": "spark-defaults", "Properties": {"spark.driver.extraJavaOptions": jvm}}
        ),
        XFormedDict({"Classification": "spark-env", "Properties": {"X": "1"}}),
    ]
    defaults = spark_defaults(configurations)
    assert defaults == {"spark.driver.extraJavaOptions": jvm}
    argv = spark_submit_argv(
        ["spark-submit", "--conf", "spark.driver.extraJavaOptions=-Xss4m", "job.py"], Path("/b"), defaults
    )
    assert argv == [
        "/b/spark-submit",
        "--master",
        "local[2]",
        "--conf",
        f"spark.driver.extraJavaOptions={jvm}",
        "--conf",
        "spark.driver.extraJavaOptions=-Xss4m",
        "job.py",
    ]


def test_the_nodes_spark_defaults_start_from_emrs_own_java_options():
    """EMR's own spark-defaults.conf names the JVMs' collector in defaultJavaOptions; the classification
    replaces a property of the same name and adds the others."""
    from local_aws.emr import EMR_SPARK_DEFAULTS, node_spark_defaults

    assert "-XX:+UseParallelGC" in EMR_SPARK_DEFAULTS["spark.driver.defaultJavaOptions"]
    serial = "-XX:OnOutOfMemoryError='kill -9 %p' -XX:+UseSerialGC"
    configurations = [
        {
            "Classification": "spark-defaults",
            "Properties": {"spark.driver.defaultJavaOptions": serial, "spark.ui.enabled": "false"},
        }
    ]
    assert node_spark_defaults(configurations) == {
        **EMR_SPARK_DEFAULTS,
        "spark.driver.defaultJavaOptions": serial,
        "spark.ui.enabled": "false",
    }
    assert node_spark_defaults([]) == EMR_SPARK_DEFAULTS


def run_words_step_with_spark_defaults(properties: dict[str, str]) -> dict:
    """A one-node cluster with this spark-defaults classification running the word-lengths step."""
    s3, emr = boto3.client("s3"), boto3.client("emr")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="input/words.txt", Body=b"apple\npear\n")
    s3.upload_file(str(TEST_JOB_ROOT / "spark_step" / "word_lengths.py"), BUCKET, "code/word_lengths.py")
    args = [
        "spark-submit",
        f"s3://{BUCKET}/code/word_lengths.py",
        f"s3://{BUCKET}/input/",
        f"s3://{BUCKET}/out/",
    ]
    cluster_id = emr.run_job_flow(
        Name="spark-defaults",
        ReleaseLabel="emr-7.5.0",
        LogUri=f"s3://{BUCKET}/logs/",
        Applications=[{"Name": "Spark"}],
        Configurations=[{"Classification": "spark-defaults", "Properties": properties}],
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": False,
        },
        Steps=[
            {
                "Name": "words",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
            }
        ],
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    final_status(cluster_id)
    return emr.list_steps(ClusterId=cluster_id)["Steps"][0]["Status"]


def test_a_collector_in_extra_java_options_stops_the_driver_as_on_emr(aws):
    """EMR's defaultJavaOptions already select a collector: a second one in extraJavaOptions makes the driver
    JVM refuse to start (the EMR 6.1.0 known issue); the sandbox ran such a step before (issue 17.4)."""
    status = run_words_step_with_spark_defaults({"spark.driver.extraJavaOptions": "-XX:+UseSerialGC"})

    assert status["State"] == "FAILED"
    assert "Error occurred during initialization of VM" in status["FailureDetails"]["Message"]
    # HotSpot prints its start-up errors on stdout.
    stdout = read_log(status["FailureDetails"]["LogFile"].replace("stderr.gz", "stdout.gz"))
    assert "Multiple garbage collectors selected" in stdout


def test_a_collector_chosen_in_default_java_options_replaces_emrs(aws):
    """The way EMR documents: spark.driver.defaultJavaOptions replaces EMR's, with its collector."""
    status = run_words_step_with_spark_defaults(
        {
            "spark.driver.defaultJavaOptions": "-XX:OnOutOfMemoryError='kill -9 %p' -XX:+UseSerialGC",
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        }
    )

    assert status["State"] == "COMPLETED"


def test_a_running_steps_stdout_is_in_s3_before_the_step_ends(cluster):
    """EMR archives a running step's logs to the LogUri periodically, not only at the end (the sandbox
    every ORCHARD_EMR_STEP_LOG_PUSH_S, 5 s by default; see docs/sandbox.md, "EMR step logs while it runs")."""
    s3, emr = boto3.client("s3"), boto3.client("emr")
    s3.upload_file(str(TEST_JOB_ROOT / "spark_step" / "two_lines.py"), BUCKET, "code/two_lines.py")
    step_id = emr.add_job_flow_steps(
        JobFlowId=cluster,
        Steps=[
            {
                "Name": "two-lines",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {
                    "Jar": "command-runner.jar",
                    "Args": ["spark-submit", f"s3://{BUCKET}/code/two_lines.py", "20"],
                },
            }
        ],
    )["StepIds"][0]
    stdout = f"s3://{BUCKET}/logs/{cluster}/steps/{step_id}/stdout.gz"
    state = lambda: emr.describe_step(ClusterId=cluster, StepId=step_id)["Step"]["Status"]["State"]  # noqa: E731

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "first line" not in _log_if_there(stdout):
        assert state() in ("PENDING", "RUNNING"), "the step ended before its first line reached S3"
        time.sleep(0.5)
    assert "first line" in _log_if_there(stdout) and "second line" not in _log_if_there(stdout)
    assert state() == "RUNNING"

    assert watch_states(state, STEP_TERMINAL, timeout_s=120)[-1] == "COMPLETED"
    assert read_log(stdout).splitlines()[-2:] == ["first line", "second line"]  # the last push: all of it


def _log_if_there(uri: str) -> str:
    try:
        return read_log(uri)
    except boto3.client("s3").exceptions.NoSuchKey:
        return ""
