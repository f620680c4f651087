"""The two players of Vondrick, Pirsiavash and Torralba (2016), "Generating Videos with Scene Dynamics".

Generator, two streams from one latent z:
* foreground: fractionally strided 3D convolutions (space-time) ending in two heads, a tanh video f and a
  sigmoid mask m, both (T, H, W);
* background: fractionally strided 2D convolutions ending in one tanh image b, shared by every frame;
* the clip: m * f + (1 - m) * b, so whatever the mask leaves out cannot move.
Discriminator: strided 3D convolutions over the whole clip down to one logit.

As in the paper (and DCGAN): 4x4(x4) kernels with stride 2, batch norm and ReLU in the generator, batch norm and
leaky ReLU (0.2) in the discriminator, no batch norm on the discriminator's first layer. The paper starts from
(2, 4, 4) and upsamples four times to 32 frames of 64 x 64; we upsample three times from (T/8, S/8, S/8).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MASK_START_BIAS = -1.0

def up3d(inputs: int, outputs: int) -> list[nn.Module]:
    """Double T, H and W."""
    return [nn.ConvTranspose3d(inputs, outputs, 4, stride=2, padding=1, bias=False), nn.BatchNorm3d(outputs),
            nn.ReLU()]


def up2d(inputs: int, outputs: int) -> list[nn.Module]:
    """Double H and W."""
    return [nn.ConvTranspose2d(inputs, outputs, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(outputs),
            nn.ReLU()]


class TwoStreamGenerator(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.g_width
        self.start = (config.frames // 8, config.image_size // 8)  # (T0, S0)
        t0, s0 = self.start
        latent = config.z_dim * (2 if config.conditional else 1)  # conditional: [encoded frame, noise]
        # Foreground stream: z -> (4c, T0, S0, S0) -> (2c, 2T0, ...) -> (c, 4T0, ...) -> heads at (8T0, 8S0, 8S0).
        self.fg_project = nn.Linear(latent, 4 * c * t0 * s0 * s0, bias=False)
        self.fg_project_norm = nn.BatchNorm3d(4 * c)
        self.fg_body = nn.Sequential(*up3d(4 * c, 2 * c), *up3d(2 * c, c))
        self.fg_video = nn.ConvTranspose3d(c, 3, 4, stride=2, padding=1)
        self.fg_mask = nn.ConvTranspose3d(c, 1, 4, stride=2, padding=1)
        # Start with the mask mostly closed (sigmoid(-1) = 0.27): with it at 0.5 the foreground stream learned
        # whole frames, background included, and the background stream went unused.
        nn.init.constant_(self.fg_mask.bias, MASK_START_BIAS)
        # Background stream: z -> (4c, S0, S0) -> ... -> (3, 8S0, 8S0).
        self.bg_project = nn.Linear(latent, 4 * c * s0 * s0, bias=False)
        self.bg_project_norm = nn.BatchNorm2d(4 * c)
        self.bg_body = nn.Sequential(*up2d(4 * c, 2 * c), *up2d(2 * c, c),
                                     nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1))
        self.width = c

    def parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(foreground (B, 3, T, H, W) in [-1, 1], mask (B, 1, T, H, W) in [0, 1], background (B, 3, H, W))."""
        t0, s0 = self.start
        h = self.fg_project(z).view(z.shape[0], 4 * self.width, t0, s0, s0)  # (B, 4c, T0, S0, S0)
        h = self.fg_body(torch.relu(self.fg_project_norm(h)))  # (B, c, T/2, S/2, S/2)
        foreground = torch.tanh(self.fg_video(h))  # (B, 3, T, S, S)
        mask = torch.sigmoid(self.fg_mask(h))  # (B, 1, T, S, S)
        g = self.bg_project(z).view(z.shape[0], 4 * self.width, s0, s0)  # (B, 4c, S0, S0)
        background = torch.tanh(self.bg_body(torch.relu(self.bg_project_norm(g))))  # (B, 3, S, S)
        return foreground, mask, background

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        foreground, mask, background = self.parts(z)
        return compose(foreground, mask, background)


def compose(foreground: torch.Tensor, mask: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """m * f + (1 - m) * b, the background image repeated over time: (B, 3, T, H, W)."""
    return mask * foreground + (1 - mask) * background.unsqueeze(2)


class ClipDiscriminator(nn.Module):
    """(B, 3, T, S, S) in [-1, 1] -> (B,) logits."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.d_width
        t0, s0 = config.frames // 8, config.image_size // 8
        self.net = nn.Sequential(
            nn.Conv3d(3, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (c, T/2, S/2, S/2)
            nn.Conv3d(c, 2 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm3d(2 * c), nn.LeakyReLU(0.2),
            nn.Conv3d(2 * c, 4 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm3d(4 * c), nn.LeakyReLU(0.2),
            nn.Conv3d(4 * c, 1, (t0, s0, s0)))  # (1, 1, 1, 1): one logit per clip

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net(clips).flatten(1).squeeze(1)  # (B,)


class FrameEncoder(nn.Module):
    """The paper's image-to-video variant: a still frame (B, 3, S, S) in [-1, 1] -> a code (B, z_dim) that takes
    the place of (half of) the latent, so the generator animates that frame."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.d_width
        s0 = config.image_size // 8
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(4 * c), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(4 * c * s0 * s0, config.z_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)  # (B, z_dim)
