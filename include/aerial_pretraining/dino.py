"""DINO's projection head, loss and schedules (Caron et al. 2021), as upstream main_dino.py / utils.py."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


class DINOHead(nn.Module):
    """MLP → L2-normalised bottleneck → weight-normalised last layer (its norm frozen at 1)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        norm_last_layer: bool = True,
    ):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad = not norm_last_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


class MultiCropWrapper(nn.Module):
    """Runs the backbone once per crop resolution (global crops together, local crops together), then the head."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        sizes = torch.tensor([crop.shape[-1] for crop in crops])
        ends = torch.cumsum(torch.unique_consecutive(sizes, return_counts=True)[1], 0).tolist()
        features, start = [], 0
        for end in ends:
            features.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(features))


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over all crop pairs but same-view."""

    def __init__(
        self,
        out_dim: int,
        n_crops: int,
        warmup_teacher_temp: float,
        teacher_temp: float,
        warmup_teacher_temp_epochs: int,
        epochs: int,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ):
        super().__init__()
        self.student_temp, self.center_momentum, self.n_crops = student_temp, center_momentum, n_crops
        self.register_buffer("center", torch.zeros(1, out_dim))
        warmup = min(warmup_teacher_temp_epochs, epochs)
        self.teacher_temps = [
            *torch.linspace(warmup_teacher_temp, teacher_temp, warmup).tolist(),
            *[teacher_temp] * (epochs - warmup),
        ]

    def teacher_temperature(self, epoch: int) -> float:
        return self.teacher_temps[min(epoch, len(self.teacher_temps) - 1)]

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor, epoch: int) -> torch.Tensor:
        student = (student_output / self.student_temp).chunk(self.n_crops)
        teacher = (
            F.softmax((teacher_output - self.center) / self.teacher_temperature(epoch), dim=-1)
            .detach()
            .chunk(2)
        )
        total, terms = 0.0, 0
        for t_index, t_probs in enumerate(teacher):
            for s_index, s_logits in enumerate(student):
                if s_index == t_index:
                    continue  # the same view seen by both networks teaches nothing
                total = total + torch.sum(-t_probs * F.log_softmax(s_logits, dim=-1), dim=-1).mean()
                terms += 1
        self.update_center(teacher_output)
        return total / terms

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        batch_center = teacher_output.sum(dim=0, keepdim=True)
        count = len(teacher_output)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(batch_center)
            count *= torch.distributed.get_world_size()
        self.center = self.center * self.center_momentum + batch_center / count * (1 - self.center_momentum)


def cosine_schedule(
    base: float,
    final: float,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int = 0,
    start_warmup: float = 0.0,
) -> list[float]:
    """Per-step values: linear warm-up, then cosine from base to final (upstream's cosine_scheduler)."""
    warmup_steps = warmup_epochs * steps_per_epoch
    warm = torch.linspace(start_warmup, base, warmup_steps).tolist() if warmup_steps else []
    steps = epochs * steps_per_epoch - warmup_steps
    return warm + [
        final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / max(steps, 1))) for i in range(steps)
    ]


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    for t_param, s_param in zip(teacher.parameters(), student.parameters(), strict=True):
        t_param.mul_(momentum).add_((1 - momentum) * s_param.detach())
