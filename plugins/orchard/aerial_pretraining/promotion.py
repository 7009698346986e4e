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


def registry_approval(approval: dict | None, run_id: str) -> dict:
    """The package's ModelApprovalStatus, and the ApprovalDescription when it is Approved.

    Approved only when a person approved at the Airflow gate (``approve_promotion``): the description names
    who and when, so the registry does not ask again. A run with ``require_approval`` off (an automated run)
    had nobody decide: its package stays PendingManualApproval ("waiting for manual approval",
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackageSummary.html), for a person
    to approve in the registry before anything deploys it.
    """
    if not approval or not approval.get("required") or not approval.get("approved"):
        return {"ModelApprovalStatus": "PendingManualApproval"}
    who = approval.get("by") or "an unknown user"
    description = f"Approved in Airflow by {who} at {approval.get('at') or 'an unknown time'} (run {run_id})"
    # ApprovalDescription: at most 1024 characters (UpdateModelPackage,
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html)
    return {"ModelApprovalStatus": "Approved", "ApprovalDescription": description[:1024]}


def register_backbone(
    hook,
    params: dict,
    settings,
    run_id: str,
    pretrained: dict,
    evaluation: dict,
    approval: dict | None = None,
) -> dict:
    """A model package version in the group, Approved when a person approved in Airflow (else
    PendingManualApproval, see `registry_approval`); a retry finds the one it made.

    `hook` is the provider's SageMakerHook. Returns the promotion outcome: the gate's decision, `promoted`,
    the package ARN, its approval status, and `reused` when a retry found the package an earlier attempt
    registered.
    """
    decision = gate_decision(evaluation, params)
    group = params["model_package_group"]
    hook.create_model_package_group(group, PACKAGE_GROUP_DESCRIPTION)
    status = registry_approval(approval, run_id)
    existing = find_run_package(hook.conn, group, run_id)  # every page: a retry must not register twice
    arn = existing or _create_package(hook.conn, params, settings, run_id, pretrained, evaluation)
    if status["ModelApprovalStatus"] == "Approved":
        # CreateModelPackage takes no ApprovalDescription: the package is created pending, then approved with
        # who and when, as a person's approval in the registry would be (one Pending -> Approved change).
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html
        hook.conn.update_model_package(ModelPackageArn=arn, **status)
    promoted = {**decision, "promoted": True, "model_package_arn": arn, **status}
    return {**promoted, "reused": True} if existing else promoted


def _create_package(client, params: dict, settings, run_id: str, pretrained: dict, evaluation: dict) -> str:
    from orchard.aerial_pretraining.plan import model_artifacts, pytorch_image

    image = pytorch_image(params, settings.region, params["probe_instance_type"])
    return client.create_model_package(
        ModelPackageGroupName=params["model_package_group"],
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
