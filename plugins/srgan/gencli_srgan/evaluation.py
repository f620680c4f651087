"""Held-out figures as the super-resolution papers report them: PSNR and SSIM on the luma (Y) channel, with
``scale`` pixels cropped at each edge, for bicubic upscaling and for the model, measured in the same run on the
same photos. Also how much fine detail each output has compared with the real photo (``hf_energy_ratio``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gencli.plugin import EvalRequest
from gencli_srgan import photos
from gencli_srgan.upscale import upscale

# ITU-R BT.601 luma for 8-bit RGB, as MATLAB's rgb2ycbcr (the papers' Y): 16 (black) to 235 (white).
Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def luma(rgb: np.ndarray) -> np.ndarray:
    return 16.0 + rgb.astype(np.float64) @ Y_WEIGHTS  # (H, W) in [16, 235]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    # Wang et al. 2004's settings: an 11x11 Gaussian window of sigma 1.5, population covariances.
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def high_frequency_energy(y: np.ndarray) -> float:
    """Mean squared response of the discrete Laplacian: the energy of the finest detail (texture, edges)."""
    laplacian = (y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1] - 4 * y[1:-1, 1:-1])
    return float(np.mean(laplacian**2))


def evaluate(model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    scale = config.scale
    border = scale if options.border < 0 else options.border
    held_out = photos.photos(request.data, "test")
    describe = getattr(request, "describe_data", None)  # the core's hook naming what was scored, where it has one
    if describe is not None:
        describe(photos.describe(request.data, "test"))
    scores: dict[str, list[float]] = {key: [] for key in ("psnr", "psnr_bicubic", "ssim", "ssim_bicubic", "hf",
                                                          "hf_bicubic")}
    for done, photo in enumerate(held_out):
        high = photos.crop_to_multiple(photo.pixels, scale)
        low = photos.downscale(high, scale)
        ours = upscale(model.generator, low, tile=128, device=request.device)
        bicubic = photos.bicubic(low, high.shape[:2])
        inner = (slice(border, -border or None), slice(border, -border or None))
        y_true, y_ours, y_bicubic = (luma(image)[inner] for image in (high, ours, bicubic))
        hf_true = high_frequency_energy(y_true)
        for suffix, y in (("", y_ours), ("_bicubic", y_bicubic)):
            scores["psnr" + suffix].append(psnr(y, y_true))
            scores["ssim" + suffix].append(ssim(y, y_true))
            scores["hf" + suffix].append(high_frequency_energy(y) / hf_true)
        request.progress(done + 1, len(held_out))
    mean = {key: float(np.mean(values)) for key, values in scores.items()}
    return {
        "psnr_y_db": mean["psnr"],
        "psnr_y_bicubic_db": mean["psnr_bicubic"],
        "psnr_gain_db": mean["psnr"] - mean["psnr_bicubic"],
        "ssim_y": mean["ssim"],
        "ssim_y_bicubic": mean["ssim_bicubic"],
        "hf_energy_ratio": mean["hf"],  # 1: as much fine detail as the real photo; blur < 1
        "hf_energy_ratio_bicubic": mean["hf_bicubic"],
        "images": len(held_out),
    }
