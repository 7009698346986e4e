"""Linear probe: frozen backbone features -> one linear multi-label layer (BCE, 19 labels) -> test mAP.

The SageMaker training job of `linear_probe`, one per backbone (script mode):

    python probe.py --arch vit_small --patch_size 16 --backbone_name aerial-dino ...

Features are the CLS tokens of the last `n_last_blocks` blocks (upstream eval_linear.py), computed once per
split since the backbone is frozen; the head keeps its best validation epoch. Writes metrics.json (macro /
micro / per-class AP on the test split), the head and the test scores to SM_MODEL_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch
from augment import eval_transform
from checkpoint import load_backbone
from dataset import BigEarthNetDataset
from labels import LAND_COVER_LABELS
from metrics import map_scores
from torch import nn
from train import METADATA_FILE, str2bool
from vit import ARCHS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vit_small", choices=sorted(ARCHS))
    p.add_argument("--patch_size", type=int, default=16)
    p.add_argument("--backbone_name", default="backbone")
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--n_last_blocks", type=int, default=4)
    p.add_argument("--avgpool_patchtokens", type=str2bool, default=False)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--num_labels", type=int, default=len(LAND_COVER_LABELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backbone_dir", default=env("SM_CHANNEL_BACKBONE", "/opt/ml/input/data/backbone"))
    p.add_argument("--metadata_dir", default=env("SM_CHANNEL_METADATA", "/opt/ml/input/data/metadata"))
    p.add_argument("--data_dir", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--output_dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    return p.parse_args(argv)


def find_checkpoint(backbone_dir: Path) -> Path:
    """The channel holds a .pth (baseline, checkpoint URI) or the pretraining job's model.tar.gz."""
    backbone_dir = Path(backbone_dir)
    files = sorted(p for p in backbone_dir.rglob("*") if p.is_file())
    for archive in (p for p in files if p.name.endswith(".tar.gz")):
        with tarfile.open(archive) as tar:
            tar.extractall(backbone_dir / "extracted", filter="data")
        return find_checkpoint(backbone_dir / "extracted")
    weights = [p for p in files if p.suffix in (".pth", ".pt")]
    if len(weights) != 1:
        raise FileNotFoundError(
            f"expected one checkpoint (.pth or model.tar.gz) in {backbone_dir}, found {[str(p) for p in files]}"
        )
    return weights[0]


@torch.no_grad()
def extract_features(
    backbone: nn.Module, data: BigEarthNetDataset, args: argparse.Namespace, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, num_workers=0)
    features, labels = [], []
    for images, targets in loader:
        outputs = backbone.get_intermediate_layers(images.to(device), args.n_last_blocks)
        feature = torch.cat([out[:, 0] for out in outputs], dim=-1)
        if args.avgpool_patchtokens:
            feature = torch.cat((feature, outputs[-1][:, 1:].mean(dim=1)), dim=-1)
        features.append(feature.float().cpu())
        labels.append(targets)
    return torch.cat(features), torch.cat(labels)


def train_head(
    train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor], args: argparse.Namespace
) -> tuple[nn.Linear, list[dict]]:
    torch.manual_seed(args.seed)
    head = nn.Linear(train[0].shape[1], args.num_labels)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.Adam(head.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    criterion = nn.BCEWithLogitsLoss()
    best, best_state, history = -1.0, head.state_dict(), []
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        order = torch.randperm(len(train[0]), generator=gen)
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            loss = criterion(head(train[0][batch]), train[1][batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        with torch.no_grad():
            val_map = map_scores(val[1].numpy(), torch.sigmoid(head(val[0])).numpy(), LAND_COVER_LABELS)[
                "macro_mAP"
            ]
        history.append({"epoch": epoch, "loss": loss.item(), "val_mAP": val_map})
        print(f"[probe] epoch={epoch} loss={loss.item():.6f} val_mAP={val_map:.6f}", flush=True)
        if val_map > best:
            best, best_state = val_map, {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    return head, history


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    checkpoint = find_checkpoint(Path(args.backbone_dir))
    backbone = (
        load_backbone(checkpoint, args.arch, args.patch_size, img_size=args.image_size).to(device).eval()
    )
    print(f"[probe] {args.backbone_name}: {args.arch}/{args.patch_size} from {checkpoint.name}", flush=True)
    metadata = Path(args.metadata_dir) / METADATA_FILE
    transform = lambda image: eval_transform(image, args.image_size)  # noqa: E731
    splits = {
        split: BigEarthNetDataset(metadata, args.data_dir, split=split, transform=transform)
        for split in ("train", "val", "test")
    }
    features = {split: extract_features(backbone, data, args, device) for split, data in splits.items()}
    head, history = train_head(features["train"], features["val"], args)
    with torch.no_grad():
        scores = torch.sigmoid(head(features["test"][0])).numpy()
    test_labels = features["test"][1].numpy()
    metrics = {
        "backbone": args.backbone_name,
        "arch": args.arch,
        "patch_size": args.patch_size,
        **map_scores(test_labels, scores, LAND_COVER_LABELS),
        "history": history,
    }
    print(f"[probe] test_mAP={metrics['macro_mAP']:.6f} test_micro_AP={metrics['micro_AP']:.6f}", flush=True)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    torch.save(head.state_dict(), output / "linear_head.pth")
    np.savez_compressed(
        output / "test_scores.npz",
        scores=scores,
        labels=test_labels,
        names=np.array(splits["test"].patch_names),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
