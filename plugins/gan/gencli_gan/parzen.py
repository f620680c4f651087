"""The Parzen-window log-likelihood estimate of the GAN paper (Goodfellow et al. 2014, section 5; following
Breuleux et al. 2011): fit an isotropic Gaussian kernel density to generated samples and score held-out images.

    log p(x) = logsumexp_i( -||x - s_i||^2 / (2 sigma^2) ) - log N - (D / 2) log(2 pi sigma^2)

sigma is chosen on the validation split from a grid; the test figure is the mean over test images with its
standard error. The paper's grid (its parzen_ll.py) is 10 values log-spaced over [0.1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SIGMA_GRID = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))


def squared_distances(x: torch.Tensor, centres: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """||x_j - c_i||^2 as float64 (n, m); the matmul runs in float32 in chunks of centres (memory stays small)."""
    x = x.flatten(1).float()
    x_norms = (x * x).sum(1, keepdim=True)  # (n, 1)
    parts = []
    for start in range(0, centres.shape[0], chunk):
        c = centres[start:start + chunk].flatten(1).float()
        d2 = x_norms + (c * c).sum(1)[None, :] - 2.0 * x @ c.T  # (n, chunk)
        parts.append(d2.clamp_min(0.0).double())
    return torch.cat(parts, dim=1)


def log_density(d2: torch.Tensor, sigma: float, dims: int) -> torch.Tensor:
    """Per-row Parzen log density (nats) from squared distances d2 (n, m) to m kernel centres."""
    m = d2.shape[1]
    return (torch.logsumexp(-d2 / (2.0 * sigma ** 2), dim=1) - math.log(m)
            - 0.5 * dims * math.log(2.0 * math.pi * sigma ** 2))


@dataclass
class ParzenEstimate:
    mean_nats: float
    standard_error_nats: float
    sigma: float


def parzen_estimate(centres: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                    sigmas: tuple[float, ...] = SIGMA_GRID) -> ParzenEstimate:
    """Choose sigma by mean validation log-likelihood, then score the test images (all (N, ...) in [0, 1])."""
    dims = centres[0].numel()
    valid_d2 = squared_distances(valid, centres)
    sigma = max(sigmas, key=lambda s: float(log_density(valid_d2, s, dims).mean()))
    scores = log_density(squared_distances(test, centres), sigma, dims)  # (n_test,)
    error = float(scores.std(unbiased=True) / math.sqrt(scores.numel())) if scores.numel() > 1 else 0.0
    return ParzenEstimate(float(scores.mean()), error, sigma)
