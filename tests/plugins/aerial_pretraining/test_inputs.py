"""aerial_pretraining's input checks: inconsistent params and missing S3 objects, before any job."""

from __future__ import annotations

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
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from orchard.aerial_pretraining.inputs import check_inputs
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
        check_inputs(params, S3Hook(aws_conn_id="aws_default"), load_settings(variables=False))
    message = str(refused.value)
    assert "empty split list s3://aerial-inputs/raw/train.csv" in message
    assert "missing s3://aerial-inputs/raw/val.csv" in message
    assert "baseline checkpoint s3://aerial-inputs/b.pth does not exist" in message
