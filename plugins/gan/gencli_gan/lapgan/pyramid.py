"""Gaussian and Laplacian pyramids (Burt and Adelson 1983), as LAPGAN uses them (Denton et al. 2015, section 3.1).

With d(.) halving the resolution and u(.) doubling it, the Gaussian pyramid is I_0 = I, I_{k+1} = d(I_k), and
the Laplacian pyramid keeps the band-pass differences h_k = I_k - u(I_{k+1}) plus the coarsest image I_K.
Reconstruction runs the recurrence backwards, I_k = u(I_{k+1}) + h_k, and is exact for ANY pair d, u: each
h_k was defined as exactly what u(I_{k+1}) misses. LAPGAN replaces each h_k by a generator's output.

Here d is 2x2 average pooling and u bilinear upsampling; both act on every channel alike.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def downsample(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): the mean of each 2x2 block (a box blur, then decimation)."""
    return F.avg_pool2d(images, 2)


def upsample(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W), bilinear: smoother than repeating pixels, so the band-pass images
    h_k hold less blockiness for the generators to undo."""
    return F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)


def gaussian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[I_0 (full size), I_1, ..., I_{levels-1} (coarsest)]."""
    pyramid = [images]
    for _ in range(levels - 1):
        pyramid.append(downsample(pyramid[-1]))
    return pyramid


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[h_0, ..., h_{levels-2}, I_{levels-1}]: band-pass images from fine to coarse, then the coarsest image."""
    gaussian = gaussian_pyramid(images, levels)
    bands = [fine - upsample(coarse) for fine, coarse in zip(gaussian, gaussian[1:])]
    return bands + [gaussian[-1]]


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """The image a Laplacian pyramid came from: I_k = u(I_{k+1}) + h_k from the coarsest level up."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = upsample(image) + band
    return image
