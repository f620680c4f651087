"""LAPGAN's players (Denton et al. 2015): at the coarsest level a fully connected pair, at every finer level a
conditional convolutional pair that works on band-pass images.

A refinement generator maps (upsampled coarser image l, a noise plane, the class) to a band-pass image h of the
same size; l + h is the next finer image. Its discriminator judges h together with the l it refines, so it
asks "is this plausible detail FOR this coarse image", and sees the class as constant one-hot planes.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

from gencli_gan.networks import ConvDiscriminator


class RefinementGenerator(nn.Module):
    """(low (B, C, s, s), noise (B, 1, s, s), labels (B,)) -> band-pass (B, C, s, s).

    As in the paper's CIFAR-10 models the noise enters as an extra image plane and the class as a plane of
    its own, a learned linear map of the one-hot label (an embedding of s * s values); three 3x3
    convolutions keep the resolution. The output is linear: band-pass values are signed and small.

    Two starting points keep a new generator quiet: the last convolution starts at zero (the first images
    are the plain upsampled coarser image, not speckle), and the noise enters scaled by a learned strength
    that starts at zero (as StyleGAN's noise inputs do). Without them the first run's 16x16 and 32x32
    discriminators told every fake by its speckled black background from step 650 on (d_fake_acc 1.0)."""

    def __init__(self, *, channels: int, width: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        self.side, self.num_classes = side, num_classes
        self.label_plane = nn.Embedding(num_classes, side * side) if num_classes else None
        planes = channels + 1 + (1 if num_classes else 0)  # low-pass image, noise, label
        self.net = nn.Sequential(
            nn.Conv2d(planes, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.noise_strength = nn.Parameter(torch.zeros(()))

    def forward(self, low: torch.Tensor, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = [low, self.noise_strength * noise]
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


class CoarseGenerator(nn.Module):
    """(z, one-hot label) -> (B, C, s, s) in [-1, 1]: two ReLU layers with batch norm, then tanh. The paper's
    coarsest levels are fully connected too: an 8x8 image is only 64 numbers per channel."""

    def __init__(self, *, z_dim: int, hidden: int, channels: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        self.shape, self.num_classes = (channels, side, side), num_classes
        self.net = nn.Sequential(nn.Linear(z_dim + num_classes, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, channels * side * side), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(with_one_hot(z, labels, self.num_classes)).view(-1, *self.shape)  # (B, C, s, s)


class CoarseDiscriminator(nn.Module):
    """(images (B, C, s, s), labels) -> (B,) logits: the flattened image and the one-hot label through two
    leaky-ReLU layers."""

    def __init__(self, *, hidden: int, channels: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(nn.Linear(channels * side * side + num_classes, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(with_one_hot(images.flatten(1), labels, self.num_classes)).squeeze(1)  # (B,)


def with_one_hot(x: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """(B, F) -> (B, F + K): the one-hot label appended (nothing for an unconditional model)."""
    if not num_classes:
        return x
    return torch.cat([x, F.one_hot(labels, num_classes).to(x.dtype)], dim=1)


def coarse_pair(config: object, side: int) -> tuple[CoarseGenerator, CoarseDiscriminator]:
    """The coarsest level: a (class-conditional) fully connected GAN making side x side images from z."""
    shape = {"hidden": config.coarse_hidden, "channels": config.channels, "side": side,
             "num_classes": config.num_classes}
    return CoarseGenerator(z_dim=config.z_dim, **shape), CoarseDiscriminator(**shape)
