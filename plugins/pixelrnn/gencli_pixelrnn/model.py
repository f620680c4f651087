"""The PixelRNN network: a 7 x 7 mask-A convolution, a stack of residual layers of one architecture
(PixelCNN blocks, Row LSTMs or Diagonal BiLSTMs), and a ReLU-1x1-ReLU-1x1 head that gives, per pixel and
colour channel, one Bernoulli logit (binary images) or 256 softmax logits (8-bit images)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli.errors import UsageError
from gencli_pixelrnn.layers import BLOCKS, GatedStem, MaskedConv2d

LEVELS = (2, 256)


class PixelRNN(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        check_config(config)
        self.config = config
        colours, width = config.channels, config.hidden
        self.colours, self.levels = colours, config.levels
        self.logits_per_channel = 1 if config.levels == 2 else config.levels
        kernel = config.first_kernel
        if config.arch == "gated-pixelcnn":  # feature maps hold both stacks; the head reads the horizontal one
            self.stem = GatedStem(colours, width, kernel)
            self.map_channels, self.head_from = 2 * width, width
        else:
            self.stem = MaskedConv2d(colours, width, (kernel, kernel), "A", colours)
            self.map_channels, self.head_from = width, 0
        self.blocks = nn.ModuleList(BLOCKS[config.arch](width, colours) for _ in range(config.layers))
        self.head = nn.Sequential(nn.ReLU(), MaskedConv2d(width, width, (1, 1), "B", colours), nn.ReLU(),
                                  MaskedConv2d(width, colours * self.logits_per_channel, (1, 1), "B", colours))

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """Pixel values (0/1 for binary, 0..255 otherwise) -> network input: 0/1, or [-1, 1] for 8-bit."""
        values = values.float()
        return values if self.levels == 2 else values / 127.5 - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded pixels (B, C, H, W) -> logits (B, C, K, H, W), K = 1 (Bernoulli) or 256."""
        features = self.stem(x)  # (B, width, H, W)
        for block in self.blocks:
            features = block(features)
        return self.logits(features)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The last feature map (B, map_channels, h, w) -> logits (B, C, K, h, w)."""
        logits = self.head(features[:, self.head_from:])  # (B, C*K, h, w), channel c's logits in group c
        return logits.unflatten(1, (self.colours, self.logits_per_channel))

    def nll(self, values: torch.Tensor) -> torch.Tensor:
        """Exact negative log-likelihood in nats of each image (B,), values as for ``encode``."""
        return nll_from_logits(self(self.encode(values)), values, self.levels)


def nll_from_logits(logits: torch.Tensor, values: torch.Tensor, levels: int) -> torch.Tensor:
    """Nats of each image (B,) from logits (B, C, K, H, W) and pixel values (B, C, H, W)."""
    if levels == 2:
        per_dim = F.binary_cross_entropy_with_logits(logits[:, :, 0].float(), values.float(), reduction="none")
    else:
        per_dim = F.cross_entropy(logits.float().transpose(1, 2), values.long(), reduction="none")
    return per_dim.flatten(1).sum(1)  # per_dim (B, C, H, W)


def check_config(config: Any) -> None:
    if config.arch not in BLOCKS:
        raise UsageError(f"--arch {config.arch}: choose one of {', '.join(BLOCKS)}")
    if config.levels not in LEVELS:
        raise UsageError(f"--levels {config.levels}: use 2 (binary pixels) or 256 (8-bit pixels)")
    if config.channels not in (1, 3):
        raise UsageError(f"images must have 1 or 3 channels, not {config.channels}")
    if config.layers < 0 or config.first_kernel < 1 or config.first_kernel % 2 == 0:
        raise UsageError("--layers must be >= 0 and --first-kernel an odd number >= 1")
    # Each colour group needs channels of its own, in the LSTM state (hidden / 2) as well.
    if config.hidden < 2 * config.channels:
        raise UsageError(f"--hidden {config.hidden} is too small for {config.channels} colour channel(s); "
                         f"use at least {2 * config.channels}")
    if config.image_size < 1:
        raise UsageError("--image-size must be at least 1")


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    return nats_per_image / (dims * math.log(2))
