"""Parameter checks that need no AWS call: inconsistent trigger-form values, refused before any job."""

from __future__ import annotations

from orchard.aerial_pretraining.instances import GPUS


def folder_uri(uri: str) -> str:
    """An S3 URI that means a folder, with exactly one trailing `/`: the one place aerial_pretraining turns a
    prefix param into a folder, so `.../bigearthnet-s2` never also reads `.../bigearthnet-s2-old/` (S3
    prefixes match any key that starts with them)."""
    return uri.strip().rstrip("/") + "/"


def parameter_problems(params: dict) -> list[str]:
    problems = []
    if params["use_spot_instances"] and params["spot_max_wait_hours"] < params["max_runtime_hours"]:
        problems.append(f"spot_max_wait_hours ({params['spot_max_wait_hours']}) must be >= max_runtime_hours ({params['max_runtime_hours']})")
    if params["global_crop_size"] % params["patch_size"] or params["local_crop_size"] % params["patch_size"]:
        problems.append(f"crop sizes ({params['global_crop_size']}, {params['local_crop_size']}) must be multiples of patch_size {params['patch_size']}")
    if params["probe_image_size"] % params["patch_size"]:
        problems.append(f"probe_image_size {params['probe_image_size']} must be a multiple of patch_size {params['patch_size']}")
    if params["arch"] == "vit_demo" and GPUS.get(params["pretrain_instance_type"], 0):
        problems.append("arch vit_demo is the CPU demo model: pick vit_small (or larger) for GPU instances")
    return problems
