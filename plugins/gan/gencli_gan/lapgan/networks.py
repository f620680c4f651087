"""LAPGAN's players (Denton et al. 2015): at the coarsest level a DCGAN pair (``gencli_gan.networks``), at every
finer level a conditional pair that works on band-pass images.

A refinement generator maps (upsampled coarser image l, a noise plane, the class) to a band-pass image h of the
same size; l + h is the next finer image. Its discriminator judges h together with the l it refines, so it
asks "is this plausible detail FOR this coarse image", and sees the class as constant one-hot planes.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from gencli_gan.networks import ConvDiscriminator, ConvGenerator


class RefinementGenerator(nn.Module):
    """(low (B, C, s, s), noise (B, 1, s, s), labels (B,)) -> band-pass (B, C, s, s).

    As in the paper's CIFAR-10 models the noise enters as an extra image plane and the class as a plane of
    its own, a learned linear map of the one-hot label (an embedding of s * s values); three 3x3
    convolutions keep the resolution. The output is linear: band-pass values are signed and small."""

    def __init__(self, *, channels: int, width: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        self.side, self.num_classes = side, num_classes
        self.label_plane = nn.Embedding(num_classes, side * side) if num_classes else None
        planes = channels + 1 + (1 if num_classes else 0)  # low-pass image, noise, label
        self.net = nn.Sequential(
            nn.Conv2d(planes, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1))

    def forward(self, low: torch.Tensor, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = [low, noise]
        if self.label_plane is not None:
            inputs.append(self.label_plane(labels).view(-1, 1, self.side, self.side))  # (B, 1, s, s)
        return self.net(torch.cat(inputs, dim=1))  # (B, C, s, s)


class RefinementDiscriminator(nn.Module):
    """(band (B, C, s, s), low (B, C, s, s), labels (B,)) -> (B,) logits: the DCGAN discriminator on the band
    and its low-pass image stacked as 2C channels."""

    def __init__(self, *, channels: int, width: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        shape = SimpleNamespace(channels=2 * channels, base_channels=width, image_size=side)
        self.net = ConvDiscriminator(shape, num_classes)

    def forward(self, band: torch.Tensor, low: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(torch.cat([band, low], dim=1), labels)  # (B,)


def coarse_pair(config: object, side: int) -> tuple[ConvGenerator, ConvDiscriminator]:
    """The coarsest level: a (class-conditional) DCGAN pair making side x side images from z."""
    shape = SimpleNamespace(z_dim=config.z_dim, base_channels=config.coarse_channels, image_size=side,
                            channels=config.channels)
    return ConvGenerator(shape, config.num_classes), ConvDiscriminator(shape, config.num_classes)
