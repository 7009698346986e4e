"""aerial_pretraining's pure pieces: the promotion gate, parameter checks and the SageMaker requests it sends.

The requests are built from the DAG's own trigger-form defaults (its PARAMS), so the DAG file is loaded once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchard.aerial_pretraining.inputs import parameter_problems
from orchard.aerial_pretraining.promotion import decide_promotion
from orchard.aerial_pretraining.requests import (
    PRETRAIN_METRICS,
    PROBE_METRICS,
    pretrain_request,
    probe_request,
)
from tests.dag_files import load_dag_module

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "aerial_pretraining.py"


@pytest.fixture(scope="module")
def dag_params() -> dict:
    return load_dag_module(DAG_FILE).PARAMS


@pytest.fixture
def params(dag_params) -> dict:
    return {key: param.value for key, param in dag_params.items()}


@pytest.fixture
def settings():
    from orchard.settings import load_settings

    return load_settings(variables=False)


CODE = {
    "sourcedir_uri": "s3://orchard-artifacts/x/code/sourcedir.tar.gz",
    "files_uri": "s3://orchard-artifacts/x/code/files/",
}
RUN_ID = "manual__2026-11-21T10:00:00+00:00"


def test_gate_promotes_only_when_the_margin_is_met():
    seed = decide_promotion(0.732, 0.685, 0.01)  # the seed's numbers
    assert seed["promoted"] is True and "beats baseline 0.6850 + margin 0.0100" in seed["reason"]
    short = decide_promotion(0.690, 0.685, 0.01)
    assert short["promoted"] is False and "does not beat" in short["reason"]
    assert decide_promotion(0.695, 0.685, 0.01)["promoted"] is True  # exactly the margin counts


def test_defaults_are_the_seeds(params):
    assert (params["arch"], params["patch_size"], params["epochs"], params["checkpoint_frequency"]) == (
        "vit_small",
        16,
        100,
        20,
    )
    assert (
        params["pretrain_instance_type"],
        params["pretrain_instance_count"],
        params["max_runtime_hours"],
    ) == ("ml.p3.16xlarge", 1, 24)
    assert (params["global_crop_size"], params["local_crop_size"], params["local_crops_number"]) == (
        224,
        96,
        8,
    )


def test_pretrain_request_on_the_seed_defaults(params, settings):
    request = pretrain_request(params, settings, RUN_ID, CODE)
    hps = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert (
        hps["sagemaker_program"] == "train.py" and hps["sagemaker_submit_directory"] == CODE["sourcedir_uri"]
    )
    assert (
        hps["sagemaker_torch_distributed_enabled"] is True
    )  # 8 V100s: torchrun (SMDDP needs p4d+ on PyTorch 2)
    assert hps["batch_size"] == 16  # 128 over 8 GPUs
    assert (
        request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
        and request["EnableManagedSpotTraining"] is False
    )
    assert request["CheckpointConfig"]["S3Uri"].startswith(
        "s3://orchard-artifacts/aerial_pretraining/manual-20261121t100000-"
    )
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("/pytorch-training:2.5.1-gpu-py311")
    assert {m["Name"] for m in request["AlgorithmSpecification"]["MetricDefinitions"]} >= {
        "train:loss",
        "train:lr",
    }


def test_spot_and_smddp(params, settings):
    request = pretrain_request(
        {
            **params,
            "use_spot_instances": True,
            "pretrain_instance_type": "ml.p4d.24xlarge",
            "pretrain_instance_count": 2,
        },
        settings,
        RUN_ID,
        CODE,
    )
    hps = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hps["sagemaker_distributed_dataparallel_enabled"] is True and hps["batch_size"] == 8
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800}
    assert request["EnableManagedSpotTraining"] is True


def test_metric_regexes_match_the_job_log_lines():
    import re

    lines = {
        "train:loss": "[dino] epoch=3 step=10 loss=7.123456 lr=0.00012500",
        "train:lr": "[dino] epoch=3 step=10 loss=7.123456 lr=0.00012500",
        "train:epoch_loss": "[dino] epoch_end=3 train_loss=6.5 images_per_s=812.5",
        "test:mAP": "[probe] test_mAP=0.732000 test_micro_AP=0.8",
    }
    wanted = {"train:loss": 7.123456, "train:lr": 0.000125, "train:epoch_loss": 6.5, "test:mAP": 0.732}
    definitions = {m["Name"]: m["Regex"] for m in PRETRAIN_METRICS + PROBE_METRICS}
    for name, line in lines.items():
        assert float(re.search(definitions[name], line).group(1)) == wanted[name]


def test_probe_requests_name_one_job_per_backbone(params, settings):
    new = probe_request(params, settings, RUN_ID, CODE, "aerial-dino", "s3://b/model.tar.gz")
    base = probe_request(params, settings, RUN_ID, CODE, "baseline", params["baseline_checkpoint_uri"])
    assert new["TrainingJobName"] != base["TrainingJobName"] and "probe-baseline" in base["TrainingJobName"]
    assert [c["ChannelName"] for c in base["InputDataConfig"]] == ["metadata", "train", "backbone"]
    assert json.loads(new["HyperParameters"]["epochs"]) == 50


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


@pytest.mark.parametrize(
    "given",
    ["s3://orchard-data/aerial/ben", "s3://orchard-data/aerial/ben/", " s3://orchard-data/aerial/ben// "],
)
def test_dataset_uris_are_folders_so_a_sibling_prefix_is_never_read(params, settings, given):
    """13.7: `.../ben` must not also read `.../ben-old/`: the prepare job's S3Prefix input ends with `/`."""
    from orchard.aerial_pretraining.requests import prepare_request, pretrain_request

    request = prepare_request(
        {**params, "raw_dataset_uri": given, "prepared_dataset_uri": given.replace("ben", "out")},
        settings,
        RUN_ID,
        CODE,
    )
    [raw] = [i for i in request["ProcessingInputs"] if i["InputName"] == "raw"]
    assert raw["S3Input"]["S3Uri"] == "s3://orchard-data/aerial/ben/"
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--input_uri") + 1] == "s3://orchard-data/aerial/ben/"
    [output] = request["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == "s3://orchard-data/aerial/out/"
    channels = pretrain_request({**params, "prepared_dataset_uri": given}, settings, RUN_ID, CODE)
    channels = channels["InputDataConfig"]
    assert channels[0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://orchard-data/aerial/ben/metadata/"


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
