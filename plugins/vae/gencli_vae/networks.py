"""Encoder and decoder networks: q(z|x) as a diagonal Gaussian, and the decoder's distribution parameters.

``conv``: two stride-2 4x4 convolutions (H -> H/2 -> H/4) and a dense layer each way, mirrored in the decoder
with transposed convolutions. ``mlp``: two dense layers each way. ELU activations throughout.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def encoder(config: Any) -> nn.Module:
    """(B, C, H, W) float -> (B, 2 * latent_size): the posterior's mean and log-variance, side by side."""
    c, s, h, z = config.channels, config.image_size, config.hidden_size, config.latent_size
    if config.arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, h), nn.ELU(), nn.Linear(h, h), nn.ELU(),
                             nn.Linear(h, 2 * z))
    w, quarter = config.conv_channels, s // 4
    return nn.Sequential(
        nn.Conv2d(c, w, 4, stride=2, padding=1), nn.ELU(),  # (B, w, H/2, W/2)
        nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.ELU(),  # (B, 2w, H/4, W/4)
        nn.Flatten(), nn.Linear(2 * w * quarter * quarter, h), nn.ELU(),
        nn.Linear(h, 2 * z),
    )


def decoder(config: Any, params_per_channel: int) -> nn.Module:
    """(B, latent_size) -> (B, C * params_per_channel, H, W): the likelihood's parameters per pixel."""
    c, s, h, z = config.channels, config.image_size, config.hidden_size, config.latent_size
    out = c * params_per_channel
    if config.arch == "mlp":
        return nn.Sequential(nn.Linear(z, h), nn.ELU(), nn.Linear(h, h), nn.ELU(), nn.Linear(h, out * s * s),
                             nn.Unflatten(1, (out, s, s)))
    w, quarter = config.conv_channels, s // 4
    return nn.Sequential(
        nn.Linear(z, h), nn.ELU(),
        nn.Linear(h, 2 * w * quarter * quarter), nn.ELU(), nn.Unflatten(1, (2 * w, quarter, quarter)),
        nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.ELU(),  # (B, w, H/2, W/2)
        nn.ConvTranspose2d(w, out, 4, stride=2, padding=1),  # (B, out, H, W)
    )


def split_posterior(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2Z) -> mean, log-variance (B, Z); the log-variance is clamped so exp() can neither vanish nor
    overflow early in training."""
    mean, log_var = stats.chunk(2, dim=-1)
    return mean, log_var.clamp(-12.0, 8.0)
