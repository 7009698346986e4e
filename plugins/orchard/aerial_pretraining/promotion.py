"""The promotion gate: register the new backbone only if it beats the baseline by the margin.

The decision is a pure function of the evaluation and the margin: the gate branches on it, and each branch
returns it (with the model package when registered), so the report gets the outcome as an XCom argument.
"""

from __future__ import annotations

PACKAGE_GROUP_DESCRIPTION = "DINO ViT backbones pretrained on aerial imagery (orchard aerial_pretraining)"


def decide_promotion(new_map: float, baseline_map: float, margin: float) -> dict:
    """Promote only when the new backbone's macro mAP beats the baseline's by at least `margin`."""
    needed = baseline_map + margin
    promoted = (
        new_map - baseline_map >= margin - 1e-9
    )  # a gain of exactly the margin counts, float noise aside
    verdict = "beats" if promoted else "does not beat"
    return {
        "promoted": promoted,
        "new_mAP": new_map,
        "baseline_mAP": baseline_map,
        "margin": margin,
        "reason": f"new mAP {new_map:.4f} {verdict} baseline {baseline_map:.4f} + margin {margin:.4f} = {needed:.4f}",
    }


def find_run_package(client, group: str, run_id: str) -> str | None:
    """The ARN of the model package this run already registered in `group`, or None.

    ListModelPackages returns at most MaxResults (1-100) summaries per call and a NextToken for the rest
    ("ListModelPackages",
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html):
    every page is read, newest first, so a retry of register_model never registers the run twice.
    """
    pages = client.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group,
        SortBy="CreationTime",
        SortOrder="Descending",
        PaginationConfig={"PageSize": 100},
    )
    for page in pages:
        for summary in page.get("ModelPackageSummaryList", []):
            described = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if described.get("CustomerMetadataProperties", {}).get("run_id") == run_id:
                return summary["ModelPackageArn"]
    return None


def gate_decision(evaluation: dict, params: dict) -> dict:
    """decide_promotion on evaluate's summary and the run's promotion_margin."""
    return decide_promotion(evaluation["new_mAP"], evaluation["baseline_mAP"], params["promotion_margin"])


def register_backbone(hook, params: dict, settings, run_id: str, pretrained: dict, evaluation: dict) -> dict:
    """A model package version (PendingManualApproval) in the group; a retry finds the one it made.

    `hook` is the provider's SageMakerHook. Returns the promotion outcome: the gate's decision, `promoted`,
    the package ARN, and `reused` when a retry found the package its earlier attempt registered.
    """
    from orchard.aerial_pretraining.plan import model_artifacts, pytorch_image

    decision = gate_decision(evaluation, params)
    group = params["model_package_group"]
    hook.create_model_package_group(group, PACKAGE_GROUP_DESCRIPTION)
    existing = find_run_package(hook.conn, group, run_id)  # every page: a retry must not register twice
    if existing:
        return {**decision, "promoted": True, "model_package_arn": existing, "reused": True}
    image = pytorch_image(params, settings.region, params["probe_instance_type"])
    arn = hook.conn.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"{params['arch']}/{params['patch_size']} DINO; test mAP "
        f"{evaluation['new_mAP']:.4f} vs baseline {evaluation['baseline_mAP']:.4f}",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": image.replace("-training:", "-inference:"),
                    "ModelDataUrl": model_artifacts(pretrained),
                }
            ],
            "SupportedContentTypes": ["application/x-npy"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={
            "run_id": run_id,
            "test_mAP": f"{evaluation['new_mAP']:.6f}",
            "baseline_mAP": f"{evaluation['baseline_mAP']:.6f}",
            "evaluation": evaluation["evaluation_uri"],
        },
    )["ModelPackageArn"]
    return {**decision, "promoted": True, "model_package_arn": arn}
