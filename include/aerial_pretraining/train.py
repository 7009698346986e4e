"""DINO self-supervised pretraining: the SageMaker training job's entry point (script mode).

    python train.py --arch vit_small --patch_size 16 --epochs 100 --batch_size 64 ...

Hyperparameters arrive as `--name value` (SageMaker passes them so); paths default to the SM_* variables.
Checkpoints go to SM_CHECKPOINT_DIR (AWS: /opt/ml/checkpoints, synced to the job's checkpoint S3 URI):
a new or spot-restarted job resumes from the last `checkpoint.pth` there, bit-identically on CPU because
every random draw comes from (seed, epoch, index) or from RNG state saved in the checkpoint.
The teacher backbone ends in SM_MODEL_DIR/checkpoint.pth; the loss history in SM_OUTPUT_DATA_DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from augment import MultiCropConfig, multi_crop
from checkpoint import CheckpointMismatchError
from dataset import BigEarthNetDataset
from dino import DINOHead, DINOLoss, MultiCropWrapper, cosine_schedule, ema_update
from distributed import init_distributed, is_main
from torch import nn
from vit import ARCHS, build_vit

METADATA_FILE = "final_ben_s2.parquet"


def str2bool(value: str | bool) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vit_small", choices=sorted(ARCHS))
    p.add_argument("--patch_size", type=int, default=16)
    p.add_argument("--out_dim", type=int, default=65536)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch_size", type=int, default=64, help="images per device per step")
    p.add_argument("--max_steps_per_epoch", type=int, default=0, help="0 = the whole split")
    p.add_argument("--saveckp_freq", type=int, default=20)
    p.add_argument(
        "--lr", type=float, default=0.0005, help="at batch 256; scaled linearly by the global batch"
    )
    p.add_argument("--min_lr", type=float, default=1e-6)
    p.add_argument("--warmup_epochs", type=int, default=10)
    p.add_argument("--weight_decay", type=float, default=0.04)
    p.add_argument("--weight_decay_end", type=float, default=0.4)
    p.add_argument("--momentum_teacher", type=float, default=0.996)
    p.add_argument("--warmup_teacher_temp", type=float, default=0.04)
    p.add_argument("--teacher_temp", type=float, default=0.07)
    p.add_argument("--warmup_teacher_temp_epochs", type=int, default=30)
    p.add_argument("--center_momentum", type=float, default=0.9)
    p.add_argument("--clip_grad", type=float, default=3.0)
    p.add_argument("--freeze_last_layer", type=int, default=1)
    p.add_argument("--drop_path_rate", type=float, default=0.1)
    p.add_argument("--global_crop_size", type=int, default=224)
    p.add_argument("--local_crop_size", type=int, default=96)
    p.add_argument("--local_crops_number", type=int, default=8)
    p.add_argument(
        "--use_fp16", type=str2bool, default=True, help="bf16/fp16 autocast on GPU; CPU always fp32"
    )
    p.add_argument("--num_workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log_every", type=int, default=10)
    p.add_argument("--metadata_dir", default=env("SM_CHANNEL_METADATA", "/opt/ml/input/data/metadata"))
    p.add_argument("--data_dir", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--output_dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--history_dir", default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    p.add_argument("--checkpoint_dir", default=env("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints"))
    return p.parse_args(argv)


class CropDataset(torch.utils.data.Dataset):
    """Multi-crops of each image, drawn from a generator seeded by (seed, epoch, index): worker-order free."""

    def __init__(self, images: BigEarthNetDataset, config: MultiCropConfig, seed: int):
        self.images, self.config, self.seed, self.epoch = images, config, seed, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 100_003 + index)
        return multi_crop(self.images.image(index), self.config, gen)


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int, batch: int) -> list[list[int]]:
    """This rank's batches of an epoch: a seeded permutation, sharded by rank, whole batches only."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()[rank::world]
    usable = max(len(order) // batch, 1) * batch
    order = order[:usable]
    return [order[i : i + batch] for i in range(0, len(order), batch)]


def collate(samples: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [torch.stack(crops) for crops in zip(*samples, strict=True)]


class DinoTrainer:
    """Student, EMA teacher, loss, optimiser and schedules: one `train_step` per batch of multi-crops."""

    def __init__(
        self, args: argparse.Namespace, steps_per_epoch: int, world_size: int = 1, device: str = "cpu"
    ):
        self.args, self.device, self.steps_per_epoch = args, torch.device(device), steps_per_epoch
        torch.manual_seed(args.seed)
        embed = ARCHS[args.arch].embed_dim
        hidden, bottleneck = (2048, 256) if embed >= 192 else (256, 64)  # the demo ViT gets a small head
        self.student = MultiCropWrapper(
            build_vit(
                args.arch, args.patch_size, img_size=args.global_crop_size, drop_path_rate=args.drop_path_rate
            ),
            DINOHead(embed, args.out_dim, hidden, bottleneck, norm_last_layer=True),
        ).to(self.device)
        self.teacher = copy.deepcopy(self.student)
        for param in self.teacher.parameters():
            param.requires_grad = False
        self.student_ddp = self._wrap_ddp(world_size)
        self.loss = DINOLoss(
            args.out_dim,
            args.local_crops_number + 2,
            args.warmup_teacher_temp,
            args.teacher_temp,
            args.warmup_teacher_temp_epochs,
            args.epochs,
            center_momentum=args.center_momentum,
        ).to(self.device)
        decay = [
            p
            for n, p in self.student.named_parameters()
            if p.requires_grad and not (n.endswith(".bias") or p.ndim == 1)
        ]
        no_decay = [
            p
            for n, p in self.student.named_parameters()
            if p.requires_grad and (n.endswith(".bias") or p.ndim == 1)
        ]
        self.optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        global_batch = args.batch_size * world_size
        self.lr = cosine_schedule(
            args.lr * global_batch / 256.0,
            args.min_lr,
            args.epochs,
            steps_per_epoch,
            min(args.warmup_epochs, args.epochs - 1),
        )
        self.wd = cosine_schedule(args.weight_decay, args.weight_decay_end, args.epochs, steps_per_epoch)
        self.momentum = cosine_schedule(args.momentum_teacher, 1.0, args.epochs, steps_per_epoch)
        gpu = self.device.type == "cuda"
        bf16 = gpu and torch.cuda.is_bf16_supported()
        self.autocast_dtype = (torch.bfloat16 if bf16 else torch.float16) if gpu and args.use_fp16 else None
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype == torch.float16 else None
        self.start_epoch = 0

    def _wrap_ddp(self, world_size: int) -> nn.Module:
        if world_size <= 1:
            return self.student
        return nn.parallel.DistributedDataParallel(
            self.student, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)

    def train_step(self, crops: list[torch.Tensor], epoch: int, step: int) -> float:
        it = epoch * self.steps_per_epoch + step
        for index, group in enumerate(self.optimizer.param_groups):
            group["lr"] = self.lr[it]
            if index == 0:
                group["weight_decay"] = self.wd[it]
        crops = [crop.to(self.device, non_blocking=True) for crop in crops]
        with self._autocast():
            teacher_out = self.teacher(crops[:2])
            student_out = self.student_ddp(crops)
            loss = self.loss(student_out.float(), teacher_out.float(), epoch)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"DINO loss is {loss.item()} at epoch {epoch} step {step}: lower --lr or disable --use_fp16"
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        nn.utils.clip_grad_norm_(self.student.parameters(), self.args.clip_grad)
        if epoch < self.args.freeze_last_layer:
            for param in self.student.head.last_layer.parameters():
                param.grad = None
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        ema_update(self.teacher, self.student, self.momentum[it])
        return loss.item()

    def state(self, next_epoch: int, history: list[dict]) -> dict:
        return {
            "student": self.student.state_dict(),
            "teacher": self.teacher.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "dino_loss": self.loss.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": next_epoch,
            "history": history,
            "rng": torch.get_rng_state(),
            "args": {
                "arch": self.args.arch,
                "patch_size": self.args.patch_size,
                "out_dim": self.args.out_dim,
            },
        }

    def resume(self, path: Path) -> list[dict]:
        checkpoint = torch.load(path, map_location=self.device, weights_only=False)
        saved = checkpoint.get("args", {})
        asked = {"arch": self.args.arch, "patch_size": self.args.patch_size, "out_dim": self.args.out_dim}
        if saved != asked:
            raise CheckpointMismatchError(
                f"checkpoint {path} was written for {saved}, but this job asks for {asked}: use a new "
                "checkpoint S3 URI for another architecture, or the same hyperparameters to resume"
            )
        self.student.load_state_dict(checkpoint["student"])
        self.teacher.load_state_dict(checkpoint["teacher"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.loss.load_state_dict(checkpoint["dino_loss"])
        if self.scaler and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        torch.set_rng_state(checkpoint["rng"])
        self.start_epoch = checkpoint["epoch"]
        return checkpoint["history"]


def save_atomically(obj: object, path: Path) -> None:
    """Write then rename: a spot interruption mid-write never leaves a truncated checkpoint.pth."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world, local_rank = init_distributed()
    device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    torch.use_deterministic_algorithms(device == "cpu", warn_only=True)
    crops = MultiCropConfig(args.global_crop_size, args.local_crop_size, args.local_crops_number)
    images = BigEarthNetDataset(Path(args.metadata_dir) / METADATA_FILE, args.data_dir, split="train")
    data = CropDataset(images, crops, args.seed)
    batches_per_epoch = len(epoch_order(len(data), args.seed, 0, rank, world, args.batch_size))
    steps = (
        min(batches_per_epoch, args.max_steps_per_epoch) if args.max_steps_per_epoch else batches_per_epoch
    )
    trainer = DinoTrainer(args, steps, world, device)
    checkpoint_dir = Path(args.checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    latest = checkpoint_dir / "checkpoint.pth"
    history: list[dict] = []
    if latest.is_file():
        history = trainer.resume(latest)
        print(f"[dino] resumed from {latest} at epoch {trainer.start_epoch}", flush=True)
    print(
        f"[dino] {args.arch}/{args.patch_size} on {device} x{world}: {len(data)} train patches, {steps} steps/epoch, "
        f"crops 2x{args.global_crop_size}+{args.local_crops_number}x{args.local_crop_size}",
        flush=True,
    )
    for epoch in range(trainer.start_epoch, args.epochs):
        history.append(run_epoch(trainer, data, epoch, rank, world, steps))
        if is_main(rank):
            state = trainer.state(epoch + 1, history)
            save_atomically(state, latest)
            if args.saveckp_freq and (epoch + 1) % args.saveckp_freq == 0:
                save_atomically(state, checkpoint_dir / f"checkpoint{epoch + 1:04d}.pth")
    if is_main(rank):
        write_outputs(trainer, history, args)
    return 0


def run_epoch(trainer: DinoTrainer, data: CropDataset, epoch: int, rank: int, world: int, steps: int) -> dict:
    data.epoch = epoch
    batches = epoch_order(len(data), trainer.args.seed, epoch, rank, world, trainer.args.batch_size)[:steps]
    loader = torch.utils.data.DataLoader(
        data,
        batch_sampler=batches,
        collate_fn=collate,
        num_workers=min(trainer.args.num_workers, os.cpu_count() or 1),
    )
    trainer.student.train()
    losses, started = [], time.monotonic()
    for step, batch in enumerate(loader):
        losses.append(trainer.train_step(batch, epoch, step))
        if step % trainer.args.log_every == 0 and is_main(rank):
            it = epoch * steps + step
            print(
                f"[dino] epoch={epoch} step={step} loss={losses[-1]:.6f} lr={trainer.lr[it]:.8f}", flush=True
            )
    mean = sum(losses) / len(losses)
    images_per_s = len(losses) * trainer.args.batch_size * world / max(time.monotonic() - started, 1e-9)
    if is_main(rank):
        print(f"[dino] epoch_end={epoch} train_loss={mean:.6f} images_per_s={images_per_s:.2f}", flush=True)
    return {"epoch": epoch, "loss": mean, "lr": trainer.lr[epoch * steps], "images_per_s": images_per_s}


def write_outputs(trainer: DinoTrainer, history: list[dict], args: argparse.Namespace) -> None:
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    backbone = {f"backbone.{k}": v for k, v in trainer.teacher.backbone.state_dict().items()}
    torch.save(
        {"teacher": backbone, "args": {"arch": args.arch, "patch_size": args.patch_size}},
        output / "checkpoint.pth",
    )
    (output / "model_info.json").write_text(
        json.dumps({"arch": args.arch, "patch_size": args.patch_size, "epochs": args.epochs})
    )
    history_dir = Path(args.history_dir)
    history_dir.mkdir(parents=True, exist_ok=True)
    (history_dir / "history.json").write_text(json.dumps(history))
    final = f"final train_loss={history[-1]['loss']:.6f}; " if history else ""
    print(f"[dino] done: {final}teacher backbone in {output / 'checkpoint.pth'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
