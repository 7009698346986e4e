"""aerial_pretraining's plan: job names, S3 prefixes and the SageMaker requests it sends (pure: params,
settings, run_id in, boto3 dicts out; `job_plan` and `probe_configs` also name the deployed job code).

Names and S3 prefixes come from `orchard.naming` (dag_id + run_id), so a retry finds the job it started.
"""

from __future__ import annotations

import json

from orchard import naming
from orchard.aerial_pretraining import DAG_ID
from orchard.aerial_pretraining.inputs import folder_uri
from orchard.aerial_pretraining.instances import GPUS, SMDDP_INSTANCES

PYTORCH_ACCOUNT = "763104351884"  # AWS Deep Learning Containers

# Metric definitions: SageMaker applies them to the job's log lines (FinalMetricDataList, CloudWatch).
PRETRAIN_METRICS = [
    {"Name": "train:loss", "Regex": r"\[dino\] epoch=\d+ step=\d+ loss=([0-9.eE+-]+)"},
    {"Name": "train:lr", "Regex": r"\[dino\] epoch=\d+ step=\d+ loss=[0-9.eE+-]+ lr=([0-9.eE+-]+)"},
    {"Name": "train:epoch_loss", "Regex": r"\[dino\] epoch_end=\d+ train_loss=([0-9.eE+-]+)"},
    {"Name": "train:images_per_s", "Regex": r"images_per_s=([0-9.eE+-]+)"},
]
PROBE_METRICS = [
    {"Name": "validation:mAP", "Regex": r"\[probe\] epoch=\d+ loss=[0-9.eE+-]+ val_mAP=([0-9.eE+-]+)"},
    {"Name": "test:mAP", "Regex": r"\[probe\] test_mAP=([0-9.eE+-]+)"},
    {"Name": "test:micro_AP", "Regex": r"test_micro_AP=([0-9.eE+-]+)"},
]


# Every SageMaker job a run starts: (kind, orchard.naming resource, suffix). The cleanup stops them by name.
RUN_JOBS = (
    ("Processing", "sagemaker_processing_job", "prepare"),
    ("Training", "sagemaker_training_job", "pretrain"),
    ("Training", "sagemaker_training_job", "probe-aerial-dino"),
    ("Training", "sagemaker_training_job", "probe-baseline"),
)


def job_plan(params: dict, settings, run_id: str) -> dict:
    """The code the jobs run (the release's, deployed by `make deploy` for this image_tag: orchard.job_code)
    and the requests of the two jobs every run starts."""
    from orchard import job_code

    code = {
        "sourcedir_uri": job_code.sourcedir_uri(settings, DAG_ID),
        "files_uri": job_code.files_uri(settings, DAG_ID),
    }
    return {
        "code": code,
        "prepare": prepare_request(params, settings, run_id, code),
        "pretrain": pretrain_request(params, settings, run_id, code),
    }


def probe_configs(params: dict, settings, run_id: str, code: dict, pretrained: dict) -> list[dict]:
    """One linear-probe job per backbone: the one this run pretrained, and the baseline to beat."""
    return [
        probe_request(params, settings, run_id, code, "aerial-dino", model_artifacts(pretrained)),
        probe_request(params, settings, run_id, code, "baseline", params["baseline_checkpoint_uri"]),
    ]


def model_artifacts(training: dict) -> str:
    """The model.tar.gz of a finished training job (the training operator's XCom)."""
    return training["Training"]["ModelArtifacts"]["S3ModelArtifacts"]


def job_name(kind: str, run_id: str, suffix: str) -> str:
    return naming.resource_name(kind, DAG_ID, run_id, suffix)


def run_prefix(run_id: str) -> str:
    return naming.resource_name("s3_prefix", DAG_ID, run_id)


def pytorch_image(params: dict, region: str, instance_type: str) -> str:
    device = "cpu" if GPUS.get(instance_type, 0) == 0 else "gpu"
    return f"{PYTORCH_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/pytorch-training:{params['pytorch_image_tag'].format(device=device)}"


def encode(hyperparameters: dict) -> dict[str, str]:
    """JSON-encode every value, as the SageMaker Python SDK does (script mode decodes them)."""
    return {key: json.dumps(value) for key, value in hyperparameters.items()}


def distribution_hyperparameters(instance_type: str, instance_count: int) -> dict:
    if instance_type in SMDDP_INSTANCES:
        return {"sagemaker_distributed_dataparallel_enabled": True, "sagemaker_instance_type": instance_type}
    if GPUS.get(instance_type, 0) * instance_count > 1:
        return {"sagemaker_torch_distributed_enabled": True}
    return {}


def per_device_batch(params: dict) -> int:
    devices = max(GPUS.get(params["pretrain_instance_type"], 0), 1) * params["pretrain_instance_count"]
    return max(params["batch_size"] // devices, 1)


def dataset_uri(params: dict, settings, run_id: str) -> str:
    chosen = (params["prepared_dataset_uri"] or "").strip()
    return folder_uri(chosen) if chosen else f"s3://{settings.artifacts_bucket}/{run_prefix(run_id)}dataset/"


def _s3_input(name: str, uri: str, local: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"},
    }


def _channel(name: str, uri: str) -> dict:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


PREPARE_REPOSITORY = "orchard/aerial-pretraining"


def prepare_request(params: dict, settings, run_id: str, code: dict) -> dict:
    code_dir, raw_dir, baseline_dir = (
        "/opt/ml/processing/input/code",
        "/opt/ml/processing/input/raw",
        "/opt/ml/processing/input/baseline",
    )
    return {
        "ProcessingJobName": job_name("sagemaker_processing_job", run_id, "prepare"),
        "RoleArn": settings.sagemaker_execution_role_arn,
        "AppSpecification": {
            # tifffile/pyarrow: not in the PyTorch DLC; include/aerial_pretraining/Dockerfile installs them.
            "ImageUri": settings.image_uri(PREPARE_REPOSITORY),
            "ContainerEntrypoint": ["python3", f"{code_dir}/prepare_dataset.py"],
            "ContainerArguments": [
                "--input_dir",
                raw_dir,
                "--output_dir",
                "/opt/ml/processing/output",
                "--baseline_dir",
                baseline_dir,
                "--arch",
                params["arch"],
                "--patch_size",
                str(params["patch_size"]),
                # for messages: an input error names the user's S3 object, not /opt/ml/...
                "--input_uri",
                folder_uri(params["raw_dataset_uri"]),
                "--baseline_uri",
                params["baseline_checkpoint_uri"],
            ],
        },
        "ProcessingInputs": [
            _s3_input("code", code["files_uri"], code_dir),
            _s3_input("raw", folder_uri(params["raw_dataset_uri"]), raw_dir),  # a folder: never `raw-old/`
            _s3_input("baseline", params["baseline_checkpoint_uri"], baseline_dir),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "dataset",
                    "S3Output": {
                        "S3Uri": dataset_uri(params, settings, run_id),
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": params["prepare_instance_type"],
                "VolumeSizeInGB": 200,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 6 * 3600},
    }


def pretrain_request(params: dict, settings, run_id: str, code: dict) -> dict:
    instance_type, count = params["pretrain_instance_type"], params["pretrain_instance_count"]
    dataset = dataset_uri(params, settings, run_id)
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": code["sourcedir_uri"],
        "sagemaker_region": settings.region,
        **distribution_hyperparameters(instance_type, count),
        "arch": params["arch"],
        "patch_size": params["patch_size"],
        "epochs": params["epochs"],
        "batch_size": per_device_batch(params),
        "saveckp_freq": params["checkpoint_frequency"],
        "out_dim": params["out_dim"],
        "global_crop_size": params["global_crop_size"],
        "local_crop_size": params["local_crop_size"],
        "local_crops_number": params["local_crops_number"],
        "warmup_epochs": min(10, max(params["epochs"] // 10, 0)),
        "warmup_teacher_temp_epochs": min(30, params["epochs"] // 3),
    }
    stopping = {"MaxRuntimeInSeconds": params["max_runtime_hours"] * 3600}
    if params["use_spot_instances"]:
        stopping["MaxWaitTimeInSeconds"] = params["spot_max_wait_hours"] * 3600
    return {
        "TrainingJobName": job_name("sagemaker_training_job", run_id, "pretrain"),
        "RoleArn": settings.sagemaker_execution_role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": pytorch_image(params, settings.region, instance_type),
            "TrainingInputMode": "File",
            "MetricDefinitions": PRETRAIN_METRICS,
        },
        "HyperParameters": encode(hyperparameters),
        "InputDataConfig": [_channel("metadata", f"{dataset}metadata/"), _channel("train", f"{dataset}rgb/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{settings.artifacts_bucket}/{run_prefix(run_id)}models/"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 100},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": bool(params["use_spot_instances"]),
        "CheckpointConfig": {
            "S3Uri": f"s3://{settings.artifacts_bucket}/{run_prefix(run_id)}checkpoints/pretrain/",
            "LocalPath": "/opt/ml/checkpoints",
        },
    }


def probe_request(params: dict, settings, run_id: str, code: dict, backbone: str, backbone_uri: str) -> dict:
    dataset = dataset_uri(params, settings, run_id)
    hyperparameters = {
        "sagemaker_program": "probe.py",
        "sagemaker_submit_directory": code["sourcedir_uri"],
        "sagemaker_region": settings.region,
        "arch": params["arch"],
        "patch_size": params["patch_size"],
        "backbone_name": backbone,
        "image_size": params["probe_image_size"],
        "epochs": params["probe_epochs"],
        "n_last_blocks": 4 if params["arch"] in ("vit_small", "vit_tiny") else 1,
        "avgpool_patchtokens": params["arch"] == "vit_base",
    }
    return {
        "TrainingJobName": job_name("sagemaker_training_job", run_id, f"probe-{backbone}"),
        "RoleArn": settings.sagemaker_execution_role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": pytorch_image(params, settings.region, params["probe_instance_type"]),
            "TrainingInputMode": "File",
            "MetricDefinitions": PROBE_METRICS,
        },
        "HyperParameters": encode(hyperparameters),
        "InputDataConfig": [
            _channel("metadata", f"{dataset}metadata/"),
            _channel("train", f"{dataset}rgb/"),
            _channel("backbone", backbone_uri),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{settings.artifacts_bucket}/{run_prefix(run_id)}models/"},
        "ResourceConfig": {
            "InstanceType": params["probe_instance_type"],
            "InstanceCount": 1,
            "VolumeSizeInGB": 100,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 4 * 3600},
    }
