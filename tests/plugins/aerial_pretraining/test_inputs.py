"""aerial_pretraining's input checks: inconsistent params and missing S3 objects, before any job."""

from __future__ import annotations

import threading

import pytest

from orchard.aerial_pretraining.inputs import parameter_problems


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"use_spot_instances": True, "spot_max_wait_hours": 12},
            "spot_max_wait_hours (12) must be >= max_runtime_hours (24)",
        ),
        ({"local_crop_size": 100}, "must be multiples of patch_size 16"),
        ({"arch": "vit_demo"}, "vit_demo is the CPU demo model"),
    ],
)
def test_inconsistent_params_are_refused_before_any_job(params, change, problem):
    assert any(problem in p for p in parameter_problems({**params, **change}))
    assert parameter_problems(params) == []


def test_check_inputs_names_every_missing_object_before_any_job(aws, params):
    """Missing split lists, an empty one and a missing baseline: one InputError naming each S3 URI."""
    import boto3

    from orchard.aerial_pretraining.inputs import check_inputs
    from orchard.aws import client as aws_client
    from orchard.errors import InputError
    from orchard.settings import load_settings

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="aerial-inputs")
    s3.put_object(Bucket="aerial-inputs", Key="raw/train.csv", Body=b"")
    params = {
        **params,
        "raw_dataset_uri": "s3://aerial-inputs/raw/",
        "baseline_checkpoint_uri": "s3://aerial-inputs/b.pth",
    }
    with pytest.raises(InputError) as refused:
        check_inputs(params, aws_client("s3"), load_settings(variables=False))
    message = str(refused.value)
    assert "empty split list s3://aerial-inputs/raw/train.csv" in message
    assert "missing s3://aerial-inputs/raw/val.csv" in message
    assert "baseline checkpoint s3://aerial-inputs/b.pth does not exist" in message


class _S3AnsweringOnlyConcurrentChecks:
    """A boto3 S3 client whose checks answer only once all seven are in flight (a barrier on each thread's
    first call): the five lists, the baseline and the job code's manifest. Checks one by one time out."""

    def __init__(self, client):
        self.client, self.barrier, self.waited = client, threading.Barrier(7, timeout=10), set()

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if name not in ("head_object", "get_object"):
            return attribute

        def call(**kwargs):
            if threading.get_ident() not in self.waited:
                self.waited.add(threading.get_ident())
                self.barrier.wait()
            return attribute(**kwargs)

        return call


def test_check_inputs_checks_the_objects_at_once_and_names_them_in_order(aws, params):
    import boto3

    from orchard.aerial_pretraining.inputs import check_inputs
    from orchard.errors import InputError
    from orchard.settings import load_settings

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="aerial-inputs")
    for listing in ("train.csv", "test.csv", "patches_with_seasonal_snow.csv"):
        s3.put_object(
            Bucket="aerial-inputs", Key=f"raw/{listing}", Body=b"" if listing == "test.csv" else b"p1\n"
        )
    params = {
        **params,
        "raw_dataset_uri": "s3://aerial-inputs/raw",
        "baseline_checkpoint_uri": "s3://aerial-inputs/b.pth",
    }

    with pytest.raises(InputError) as refused:
        check_inputs(params, _S3AnsweringOnlyConcurrentChecks(s3), load_settings(variables=False))

    problems = str(refused.value).split("\n- ")[1:]
    assert [problem.split(" (")[0].split(": ")[0] for problem in problems[:4]] == [
        "missing s3://aerial-inputs/raw/val.csv",
        "empty split list s3://aerial-inputs/raw/test.csv",
        "missing s3://aerial-inputs/raw/patches_with_cloud_and_shadow.csv",
        "baseline checkpoint s3://aerial-inputs/b.pth does not exist",
    ]
    assert len(problems) == 5 and "job code 'aerial_pretraining'" in problems[4]
