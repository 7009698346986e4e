"""orchard.auto_labeling.labeling: the run's Ground Truth job is stopped by name when the run fails."""

from __future__ import annotations

import time

from tests.local_aws.test_async_endpoints_and_labeling import (  # noqa: F401 (fixtures)
    labeling_request,
    manifest_in_s3,
    sagemaker,
)


def test_the_runs_labeling_job_is_stopped_by_name_when_still_in_progress(manifest_in_s3, monkeypatch):  # noqa: F811
    """Issue 14: a failed or stopped run stops its Ground Truth job (StopLabelingJob), found by name; a
    job that ended, or none (stop_at_manifest, a run that failed before labeling), is left as it is."""
    from local_aws import labeling
    from orchard.auto_labeling.labeling import stop_labeling_job

    # the session's sandbox runs in this process: keep the job InProgress long enough to be stopped
    monkeypatch.setattr(labeling, "WORK_SECONDS", 60.0)

    plan = {"conn_id": "aws_default", "labeling_job_name": "auto-labeling-run-1"}
    assert stop_labeling_job(plan) == "none"
    manifest_in_s3.create_labeling_job(**labeling_request("auto-labeling-run-1"))
    assert stop_labeling_job(plan) == "Stopping"
    job = lambda: manifest_in_s3.describe_labeling_job(LabelingJobName="auto-labeling-run-1")  # noqa: E731
    for _ in range(300):  # a minute at most: the sandbox's job ends in about a second on a quiet machine
        if job()["LabelingJobStatus"] == "Stopped":
            break
        time.sleep(0.2)
    assert job()["LabelingJobStatus"] == "Stopped"
    assert stop_labeling_job(plan) == "Stopped"  # a cleanup retried finds it ended: nothing to do


def test_the_verified_dataset_reads_the_auto_accept_policy_beside_the_output_manifest(aws, in_flight):
    """read_verified is on the critical path (issue 17.1): the auto-accept policy is read while the output
    manifest is, with one GET that may find nothing (before: a HEAD, then a GET, after the manifest's
    read and the dataset's write); a job without the policy file gets none."""
    import json

    import boto3

    from orchard.auto_labeling.labeling import read_verified

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="labels")
    lines = [
        {
            "source-ref": f"s3://labels/frames/{index}.png",
            "prelabel": {"annotations": [{"class_id": 0, "left": 1, "top": 2, "width": 3, "height": 4}]},
            "verified": {"class-name": grade},
            "verified-metadata": {"class-name": grade, "human-annotated": "yes"},
        }
        for index, grade in enumerate(("good", "bad"))
    ]
    for job_name, policy in (("with-policy", "no human verified these"), ("without-policy", None)):
        output = f"s3://labels/labeling/{job_name}/manifests/output/output.manifest"
        body = "".join(json.dumps(line) + "\n" for line in lines)
        s3.put_object(Bucket="labels", Key=output.removeprefix("s3://labels/"), Body=body.encode())
        if policy:
            key = f"labeling/{job_name}/annotations/auto-accept-policy.txt"
            s3.put_object(Bucket="labels", Key=key, Body=policy.encode())
        plan = {"conn_id": "aws_default", "mode": "verify", "base_uri": f"s3://labels/{job_name}/"}
        job = {"output_manifest": output, "label_attribute": "verified", "job_name": job_name}
        in_flight.peak.clear()

        verified = read_verified(plan, job)

        assert (verified["verified"], verified["rejected"], verified["human_annotated"]) == (1, 1, 2)
        assert verified["auto_accept_policy"] == (policy or "")
        assert in_flight.peak["GetObject"] == 2 and in_flight.peak["HeadObject"] == 0
        written = s3.get_object(Bucket="labels", Key=f"{job_name}/verified/verified.jsonl")["Body"].read()
        assert [json.loads(line)["status"] for line in written.decode().splitlines()] == [
            "verified",
            "rejected",
        ]
