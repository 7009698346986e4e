"""Data-parallel setup: SMDDP where SageMaker enabled it, torchrun's env:// otherwise, else one process."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist


def smddp_enabled() -> bool:
    params = json.loads(os.environ.get("SM_FRAMEWORK_PARAMS", "{}") or "{}")
    return bool(params.get("sagemaker_distributed_dataparallel_enabled", False))


def init_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank); initialises the process group when there is more than one process."""
    if smddp_enabled():
        import smdistributed.dataparallel.torch.torch_smddp  # noqa: F401  registers the "smddp" backend

        dist.init_process_group(backend="smddp")
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    else:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return dist.get_rank(), dist.get_world_size(), local_rank


def is_main(rank: int) -> bool:
    return rank == 0
