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
