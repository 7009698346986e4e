"""Backbone weights from a checkpoint file, checked against the architecture the job was asked for."""

from __future__ import annotations

from pathlib import Path

import torch
from vit import ARCHS, VisionTransformer, build_vit


class CheckpointMismatchError(ValueError):
    """A checkpoint from another architecture: the message names the file, what it holds and what was asked."""


def backbone_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The backbone of our training checkpoint (teacher), of upstream DINO's, or a bare state dict."""
    state = checkpoint.get("teacher", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    cleaned = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("head."):
            continue  # DINO projection head: not part of the backbone
        cleaned[key.removeprefix("backbone.")] = value
    return cleaned


def describe(state: dict[str, torch.Tensor]) -> str:
    """'embed_dim 384, depth 12, patch 16' as far as the tensors tell."""
    try:
        embed, _, patch, _ = state["patch_embed.proj.weight"].shape
        depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        return f"embed_dim {embed}, depth {depth}, patch {patch}"
    except (KeyError, ValueError):
        return f"no ViT backbone (keys: {', '.join(list(state)[:5])}...)"


def load_backbone(path: Path, arch: str, patch_size: int, img_size: int = 224) -> VisionTransformer:
    """Build `arch` and load the file's backbone into it; any mismatch raises CheckpointMismatchError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing checkpoint file {path}")
    model = build_vit(arch, patch_size, img_size=img_size)
    state = backbone_state(torch.load(path, map_location="cpu", weights_only=True))
    expected = model.state_dict()
    spec = ARCHS[arch]
    wanted = f"{arch} = embed_dim {spec.embed_dim}, depth {spec.depth}, patch {patch_size}"
    problems = [k for k in expected if k not in state] + [k for k in state if k not in expected]
    problems += [
        k for k in expected if k in state and k != "pos_embed" and state[k].shape != expected[k].shape
    ]
    if problems or state.get("pos_embed", torch.empty(0, 0, 0)).shape[-1] != spec.embed_dim:
        raise CheckpointMismatchError(
            f"checkpoint {path} holds another architecture ({describe(state)}) than the job's arch/patch_size "
            f"({wanted}); first mismatching tensors: {problems[:3]}. Pass the checkpoint of a {arch}/{patch_size} "
            "backbone or change arch / patch_size"
        )
    state["pos_embed"] = _resize_pos_embed(state["pos_embed"], expected["pos_embed"])
    model.load_state_dict(state)
    return model


def _resize_pos_embed(saved: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    if saved.shape == wanted.shape:
        return saved
    old_side, new_side = int((saved.shape[1] - 1) ** 0.5), int((wanted.shape[1] - 1) ** 0.5)
    grid = saved[:, 1:].reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(
        grid, size=(new_side, new_side), mode="bicubic", align_corners=False
    )
    return torch.cat((saved[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, saved.shape[-1])), dim=1)


def write_random_backbone(path: Path, arch: str, patch_size: int, seed: int = 0) -> None:
    """A randomly initialised backbone in upstream's bare state-dict format (a no-pretraining baseline)."""
    torch.manual_seed(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_vit(arch, patch_size).state_dict(), path)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="write a randomly initialised ViT backbone checkpoint")
    parser.add_argument("path")
    parser.add_argument("--arch", default="vit_demo", choices=sorted(ARCHS))
    parser.add_argument("--patch_size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    write_random_backbone(Path(cli.path), cli.arch, cli.patch_size, cli.seed)
