"""LAPGAN's players (Denton et al. 2015): at the coarsest level a fully connected pair, at every finer level a
conditional convolutional pair that works on band-pass images.

A refinement generator maps (upsampled coarser image l, a noise plane, the class) to a band-pass image h of the
same size; l + h is the next finer image. Its discriminator judges h together with the l it refines, so it
asks "is this plausible detail FOR this coarse image".

A class-conditional discriminator (every level) sees the class twice, never as an input: its label-free trunk
maps the image to features phi(x), and (1) a projection (Miyato and Koyama 2018) adds <embed(y), phi(x)> to the
real/fake logit, (2) an auxiliary classifier head (AC-GAN, Odena et al. 2017) predicts the class from phi(x)
alone (``classify=True``); model.py trains that head on real images and scores the generator with it. With the
label as input planes instead, the --label all grid scored 69-72% of its class at step 1,500; with both it
scored 92-93%.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

from gencli_gan.networks import ConvDiscriminator


class RefinementGenerator(nn.Module):
    """(low (B, C, s, s), noise (B, 1, s, s), labels (B,)) -> band-pass (B, C, s, s).

    As in the paper's CIFAR-10 models the noise enters as an extra image plane; the class enters as K constant
    one-hot planes. Three 3x3 convolutions keep the resolution. The output is linear: band-pass values are
    signed and small.

    Two starting points keep a new generator quiet: the last convolution starts at zero (the first images
    are the plain upsampled coarser image, not speckle), and the noise enters scaled by a learned strength
    that starts at zero (as StyleGAN's noise inputs do). The class was once a learned s x s plane per class (the
    paper's linear map of the one-hot label), initialised at random: the generators learned to ignore the noise
    (strength ~1e-4 after 4,000 steps) but not that plane's fixed per-class pattern, which showed as speckle in
    every sample's black background."""

    def __init__(self, *, channels: int, width: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        self.side, self.num_classes = side, num_classes
        planes = channels + 1 + num_classes  # low-pass image, noise, one-hot label planes
        self.net = nn.Sequential(
            nn.Conv2d(planes, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.noise_strength = nn.Parameter(torch.zeros(()))

    def forward(self, low: torch.Tensor, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = [low, self.noise_strength * noise]
        if self.num_classes:
            b, _, h, w = low.shape
            inputs.append(F.one_hot(labels, self.num_classes).to(low.dtype)[:, :, None, None].expand(b, -1, h, w))
        return self.net(torch.cat(inputs, dim=1))  # (B, C, s, s)


class ClassAware(nn.Module):
    """The class-conditional discriminator's two heads on label-free trunk features (B, F): the real/fake logit
    plus the projection <embed(y), phi>, or (``classify``) the class logits (B, K). Unconditional: a logit only."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.logit = nn.Linear(features, 1)
        if num_classes:
            self.embed = nn.Embedding(num_classes, features)
            nn.init.normal_(self.embed.weight, std=0.02)  # starts as a nearly unconditional discriminator
            self.classifier = nn.Linear(features, num_classes)

    def forward(self, phi: torch.Tensor, labels: torch.Tensor | None, classify: bool) -> torch.Tensor:
        if classify:
            return self.classifier(phi)  # (B, K)
        logits = self.logit(phi).squeeze(1)  # (B,)
        if self.num_classes:
            logits = logits + (self.embed(labels) * phi).sum(1)
        return logits


class RefinementDiscriminator(nn.Module):
    """(band (B, C, s, s), low (B, C, s, s), labels (B,)) -> (B,) logits, or (B, K) class logits with
    ``classify``: the DCGAN discriminator's strided trunk on the band and its low-pass image stacked as 2C
    channels, then the class-aware heads."""

    def __init__(self, *, channels: int, width: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        shape = SimpleNamespace(channels=2 * channels, base_channels=width, image_size=side)
        self.trunk = ConvDiscriminator(shape, 0).down  # (B, 2C, s, s) -> (B, 2w, s/4, s/4)
        self.heads = ClassAware(2 * width * (side // 4) ** 2, num_classes)

    def forward(self, band: torch.Tensor, low: torch.Tensor, labels: torch.Tensor | None = None,
                classify: bool = False) -> torch.Tensor:
        return self.heads(self.trunk(torch.cat([band, low], dim=1)).flatten(1), labels, classify)


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
    """(images (B, C, s, s), labels) -> (B,) logits, or (B, K) class logits with ``classify``: the flattened
    image through two leaky-ReLU layers, then the class-aware heads."""

    def __init__(self, *, hidden: int, channels: int, side: int, num_classes: int = 0) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(channels * side * side, hidden), nn.LeakyReLU(0.2),
                                   nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.heads = ClassAware(hidden, num_classes)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None,
                classify: bool = False) -> torch.Tensor:
        return self.heads(self.trunk(images.flatten(1)), labels, classify)


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
