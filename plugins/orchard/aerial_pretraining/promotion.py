"""The promotion gate: register the new backbone only if it beats the baseline by the margin."""

from __future__ import annotations


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
