"""DINO's multi-crop augmentation in plain torch (torchvision does not import with the CPU torch here).

Every random draw comes from the `torch.Generator` passed in, so a seeded epoch always sees the same crops:
that is what lets a resumed job continue bit-identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
GRAY_WEIGHTS = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


@dataclass(frozen=True)
class MultiCropConfig:
    global_size: int = 224
    local_size: int = 96
    local_crops_number: int = 8
    global_scale: tuple[float, float] = (0.4, 1.0)  # upstream's global_crops_scale
    local_scale: tuple[float, float] = (0.05, 0.4)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=gen).item()


def _chance(gen: torch.Generator, p: float) -> bool:
    return torch.rand((), generator=gen).item() < p


def random_resized_crop(
    image: torch.Tensor, size: int, scale: tuple[float, float], gen: torch.Generator
) -> torch.Tensor:
    """Crop a random area (fraction in `scale`, aspect 3/4–4/3) and resize it to size × size."""
    _, height, width = image.shape
    area = height * width
    for _ in range(10):
        target = area * _uniform(gen, *scale)
        ratio = math.exp(_uniform(gen, math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=gen))
            left = int(torch.randint(0, width - w + 1, (), generator=gen))
            break
    else:  # fall back to the whole image, as torchvision does
        top, left, h, w = 0, 0, height, width
    crop = image[:, top : top + h, left : left + w].unsqueeze(0)
    return F.interpolate(
        crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).squeeze(0)


def color_jitter(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness 0.4, contrast 0.4, saturation 0.2 (upstream also jitters hue by 0.1; omitted here)."""
    image = image * _uniform(gen, 0.6, 1.4)
    gray_mean = (image * GRAY_WEIGHTS).sum(0).mean()
    image = (image - gray_mean) * _uniform(gen, 0.6, 1.4) + gray_mean
    gray = (image * GRAY_WEIGHTS).sum(0, keepdim=True)
    image = (image - gray) * _uniform(gen, 0.8, 1.2) + gray
    return image.clamp(0, 1)


def grayscale(image: torch.Tensor) -> torch.Tensor:
    return (image * GRAY_WEIGHTS).sum(0, keepdim=True).expand(3, -1, -1).clone()


def gaussian_blur(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    sigma = _uniform(gen, 0.1, 2.0)
    radius = max(1, min(int(3 * sigma), (image.shape[-1] - 1) // 2))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return x.squeeze(0)


def normalize(image: torch.Tensor) -> torch.Tensor:
    return (image - IMAGENET_MEAN) / IMAGENET_STD


def _photometric(image: torch.Tensor, gen: torch.Generator, blur_p: float, solarize_p: float) -> torch.Tensor:
    if _chance(gen, 0.5):
        image = image.flip(-1)
    if _chance(gen, 0.8):
        image = color_jitter(image, gen)
    if _chance(gen, 0.2):
        image = grayscale(image)
    if _chance(gen, blur_p):
        image = gaussian_blur(image, gen)
    if _chance(gen, solarize_p):
        image = torch.where(image >= 0.5, 1 - image, image)
    return normalize(image)


def multi_crop(image: torch.Tensor, config: MultiCropConfig, gen: torch.Generator) -> list[torch.Tensor]:
    """2 global crops (blur always / rarely + solarize) then `local_crops_number` local crops (blur p=0.5)."""
    crops = [
        _photometric(random_resized_crop(image, config.global_size, config.global_scale, gen), gen, 1.0, 0.0),
        _photometric(random_resized_crop(image, config.global_size, config.global_scale, gen), gen, 0.1, 0.2),
    ]
    for _ in range(config.local_crops_number):
        crops.append(
            _photometric(
                random_resized_crop(image, config.local_size, config.local_scale, gen), gen, 0.5, 0.0
            )
        )
    return crops


def eval_transform(image: torch.Tensor, size: int) -> torch.Tensor:
    """The probe's deterministic view: the whole patch resized to size × size, normalised."""
    resized = F.interpolate(
        image.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return normalize(resized.squeeze(0))
