"""Sampling: an --input photo upscaled by the generator, tile by tile (gencli.tiling) so memory stays bounded."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gencli.errors import UsageError
from gencli.plugin import Images, SampleRequest
from gencli.tiling import tiled


def upscale(generator: Any, low: np.ndarray, *, tile: int, device: Any, progress: Any = None) -> np.ndarray:
    """uint8 (h, w, 3) -> uint8 (h*s, w*s, 3), computed tile by tile."""
    image = torch.from_numpy(np.ascontiguousarray(low)).permute(2, 0, 1)[None].to(device).float() / 255  # (1, 3, h, w)

    def apply(window: torch.Tensor) -> torch.Tensor:
        return (generator(window).clamp(0, 1) * 255).round().to(torch.uint8)  # (1, 3, h'*s, w'*s)

    high = tiled(apply, image, tile=tile, overlap=generator.receptive_radius(), scale=generator.scale,
                 progress=progress)
    return high[0].permute(1, 2, 0).cpu().numpy()  # (h*s, w*s, 3)


def alpha_upscaled(alpha: np.ndarray, scale: int) -> np.ndarray:
    """An input's transparency, bicubic-upscaled to the output (the generator sees colours only)."""
    from PIL import Image

    height, width = alpha.shape
    return np.asarray(Image.fromarray(alpha).resize((width * scale, height * scale), Image.Resampling.BICUBIC))


def sample(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    if options.scale not in (0, config.scale):
        raise UsageError(f"--scale {options.scale}: these weights upscale {config.scale}x; train a {options.scale}x "
                         f"model with `gencli train srresnet --scale {options.scale}`"
                         if options.scale in (2, 4) else
                         f"--scale {options.scale}: SRResNet upscales 2x or 4x, and these weights {config.scale}x")
    image = request.input
    if image is None:
        raise UsageError("give the photo to upscale with --input")
    if request.n != 1:
        raise UsageError(f"-n {request.n}: super-resolution gives one output per photo (it draws no noise)")
    high = upscale(model.generator, image.pixels, tile=options.tile, device=request.device,
                   progress=request.progress)  # (H, W, 3)
    if image.alpha is not None:
        high = np.concatenate([high, alpha_upscaled(image.alpha, config.scale)[:, :, None]], axis=2)  # (H, W, 4)
    return Images(high[None])  # (1, H, W, C)
