"""aerial_pretraining's plan: the SageMaker requests it sends, built from the DAG's own trigger-form defaults
(its PARAMS: the fixtures in conftest.py load the DAG file once)."""

from __future__ import annotations

import json

import pytest

from orchard.aerial_pretraining.plan import (
    PRETRAIN_METRICS,
    PROBE_METRICS,
    prepare_request,
    pretrain_request,
    probe_request,
)
from tests.plugins.aerial_pretraining.samples import CODE, RUN_ID


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


def test_the_plan_runs_the_releases_job_code_and_probes_the_new_backbone_and_the_baseline(params, settings):
    from orchard import job_code
    from orchard.aerial_pretraining.plan import job_plan, probe_configs

    plan = job_plan(params, settings, RUN_ID)

    assert plan["code"]["sourcedir_uri"] == job_code.sourcedir_uri(settings, "aerial_pretraining")
    assert plan["prepare"] == prepare_request(params, settings, RUN_ID, plan["code"])
    assert plan["pretrain"] == pretrain_request(params, settings, RUN_ID, plan["code"])
    pretrained = {"Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/pretrain/model.tar.gz"}}}
    new, base = probe_configs(params, settings, RUN_ID, plan["code"], pretrained)
    assert new == probe_request(
        params, settings, RUN_ID, plan["code"], "aerial-dino", "s3://b/pretrain/model.tar.gz"
    )
    assert base == probe_request(
        params, settings, RUN_ID, plan["code"], "baseline", params["baseline_checkpoint_uri"]
    )


@pytest.mark.parametrize(
    "given",
    ["s3://orchard-data/aerial/ben", "s3://orchard-data/aerial/ben/", " s3://orchard-data/aerial/ben// "],
)
def test_dataset_uris_are_folders_so_a_sibling_prefix_is_never_read(params, settings, given):
    """13.7: `.../ben` must not also read `.../ben-old/`: the prepare job's S3Prefix input ends with `/`."""
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
