"""SRResNet (the generator) and SRGAN's discriminator (Ledig et al. 2017, figure 4), scaled for a CPU.

Two departures from the paper, both for a model trained in minutes on one core:

* no batch normalisation in the residual blocks (Lim et al. 2017, EDSR, found it hurts super-resolution; without
  it a tile's output depends on its own pixels only, never on batch statistics);
* the network predicts the detail missing from a bicubic upscale of its input, which is added back (the global
  residual of Kim et al. 2016, VDSR): an untrained network starts at bicubic quality instead of a grey image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gencli.errors import UsageError

SCALES = (2, 4)  # one or two x2 pixel-shuffle stages, as in the paper


class ResidualBlock(nn.Module):
    """conv3x3 - PReLU - conv3x3, plus the block's input (the paper's block, without batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))  # (B, C, h, w)


class UpsampleBlock(nn.Module):
    """conv3x3 to 4C channels, pixel shuffle to twice the size with C channels, PReLU (sub-pixel convolution,
    Shi et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))  # (B, C, 2h, 2w)


class SRResNet(nn.Module):
    """Low-resolution RGB in [0, 1], (B, 3, h, w) -> high-resolution RGB, (B, 3, h*scale, w*scale)."""

    def __init__(self, *, scale: int, blocks: int, channels: int) -> None:
        super().__init__()
        if scale not in SCALES:
            raise UsageError(f"--scale {scale}: SRResNet upscales 2x or 4x (one or two pixel-shuffle stages)")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.body_end = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Sequential(*(UpsampleBlock(channels) for _ in range(scale // 2)))
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        features = self.head(low)  # (B, C, h, w)
        features = features + self.body_end(self.body(features))  # the long skip around the residual blocks
        detail = self.tail(self.upsample(features))  # (B, 3, h*s, w*s)
        base = F.interpolate(low, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + detail

    def receptive_radius(self) -> int:
        """Input pixels on each side that reach one output pixel (tiles need at least this much overlap)."""
        convs_3x3 = 2 * len(self.body) + 1
        radius = 4 + convs_3x3  # the 9x9 head and the 3x3 body convolutions, at input resolution
        for stage in range(len(self.upsample)):  # each upsampling 3x3 conv, at 2**stage times the input size
            radius += 1 / 2**stage
        radius += 4 / self.scale + 2  # the 9x9 tail at output resolution; the bicubic base reaches 2 pixels
        return int(radius) + 1


class Discriminator(nn.Module):
    """The paper's VGG-style discriminator, narrower: pairs of 3x3 convolutions (the second of each pair with
    stride 2), LeakyReLU 0.2, then a global average and two dense layers to one logit. ``features=True`` also
    returns each stage's activations (the feature loss that stands in for VGG)."""

    def __init__(self, *, channels: int, stages: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, previous = channels, 3
        for stage in range(stages):
            layers.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)))
            previous, width = width, min(width * 2, channels * 8)
        self.stages = nn.ModuleList(layers)
        self.classify = nn.Sequential(nn.Linear(previous, previous * 2), nn.LeakyReLU(0.2), nn.Linear(previous * 2, 1))

    def forward(self, images: torch.Tensor, features: bool = False) -> Any:
        x, found = images * 2 - 1, []  # [0, 1] -> [-1, 1]
        for stage in self.stages:
            x = stage(x)  # (B, C_k, H / 2**k, W / 2**k)
            found.append(x)
        logits = self.classify(x.mean(dim=(2, 3))).squeeze(1)  # (B,)
        return (logits, found) if features else logits


class SuperResolution(nn.Module):
    """What a run folder holds: the generator, and for the adversarial stage its discriminator."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.generator = SRResNet(scale=config.scale, blocks=config.blocks, channels=config.channels)
        self.discriminator = Discriminator(channels=config.d_channels) if config.discriminator else None

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.generator(low)
