"""The Parzen-window log-likelihood estimate of the GAN paper (Goodfellow et al. 2014, section 5; following
Breuleux et al. 2011): fit an isotropic Gaussian kernel density to generated samples and score held-out images.

    log p(x) = logsumexp_i( -||x - s_i||^2 / (2 sigma^2) ) - log N - (D / 2) log(2 pi sigma^2)

sigma is chosen on the validation split from a grid; the test figure is the mean over test images with its
standard error. The paper's grid (its parzen_ll.py) is 10 values log-spaced over [0.1, 1].

The distances are never held all at once: blocks of ROW_CHUNK points x CENTRE_CHUNK centres are reduced into
a running logsumexp per sigma, so 10,000 kernels against 10,000 points stay within about 100 MB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SIGMA_GRID = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))
ROW_CHUNK = 1000  # points per block: a (1000, 2048) float64 block is 16 MB
CENTRE_CHUNK = 2048


def squared_distances(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """||x_j - c_i||^2 as float64 (n, m). Holds the whole block: callers chunk.

    The matmul runs in float32 (fast, and exact enough for pixels) unless both inputs are float64.
    """
    dtype = torch.float64 if x.dtype == centres.dtype == torch.float64 else torch.float32
    x = x.flatten(1).to(dtype)
    c = centres.flatten(1).to(dtype)
    d2 = (x * x).sum(1, keepdim=True) + (c * c).sum(1)[None, :] - 2.0 * x @ c.T  # (n, m)
    return d2.clamp_min(0.0).double()


def log_density(d2: torch.Tensor, sigma: float, dims: int) -> torch.Tensor:
    """Per-row Parzen log density (nats) from squared distances d2 (n, m) to m kernel centres."""
    m = d2.shape[1]
    return (torch.logsumexp(-d2 / (2.0 * sigma ** 2), dim=1) - math.log(m)
            - 0.5 * dims * math.log(2.0 * math.pi * sigma ** 2))


def log_densities(points: torch.Tensor, centres: torch.Tensor, sigmas: tuple[float, ...],
                  row_chunk: int = ROW_CHUNK, centre_chunk: int = CENTRE_CHUNK) -> torch.Tensor:
    """Parzen log density (nats) of each point under each sigma, (len(sigmas), n) float64, in blocks.

    Equal to ``log_density(squared_distances(points, centres), sigma, dims)`` for every sigma, without the
    (n, m) matrix: each block's logsumexp joins a running total by logaddexp.
    """
    n, m, dims = points.shape[0], centres.shape[0], centres[0].numel()
    scales = torch.tensor([2.0 * s ** 2 for s in sigmas], dtype=torch.float64)[:, None]  # (S, 1)
    normaliser = torch.tensor([math.log(m) + 0.5 * dims * math.log(2.0 * math.pi * s ** 2) for s in sigmas],
                              dtype=torch.float64)[:, None]  # (S, 1)
    rows = []
    for start in range(0, n, row_chunk):
        block_points = points[start:start + row_chunk]
        total = torch.full((len(sigmas), block_points.shape[0]), -math.inf, dtype=torch.float64)  # (S, r)
        for c_start in range(0, m, centre_chunk):
            d2 = squared_distances(block_points, centres[c_start:c_start + centre_chunk])  # (r, c)
            for k in range(len(sigmas)):  # one sigma at a time: an (S, r, c) tensor would be S times larger
                total[k] = torch.logaddexp(total[k], torch.logsumexp(-d2 / scales[k], dim=1))
        rows.append(total - normaliser)
    return torch.cat(rows, dim=1)


@dataclass
class ParzenEstimate:
    mean_nats: float
    standard_error_nats: float
    sigma: float


def parzen_estimate(centres: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                    sigmas: tuple[float, ...] = SIGMA_GRID) -> ParzenEstimate:
    """Choose sigma by mean validation log-likelihood, then score the test images (all (N, ...) in [0, 1])."""
    valid_means = log_densities(valid, centres, sigmas).mean(dim=1)  # (S,)
    sigma = sigmas[int(valid_means.argmax())]
    scores = log_densities(test, centres, (sigma,))[0]  # (n_test,)
    error = float(scores.std(unbiased=True) / math.sqrt(scores.numel())) if scores.numel() > 1 else 0.0
    return ParzenEstimate(float(scores.mean()), error, sigma)


def parzen_figures(samples: torch.Tensor, train: torch.Tensor, valid: torch.Tensor,
                   test: torch.Tensor) -> dict[str, float]:
    """The evaluate figures: the samples' Parzen estimate beside the same estimate with the training images as
    the kernels (``parzen_train_reference_*``), all images (N, ...) in [0, 1]."""
    model = parzen_estimate(samples, valid, test)
    reference = parzen_estimate(train, valid, test)
    return {
        "parzen_log_likelihood_nats": model.mean_nats,
        "parzen_standard_error_nats": model.standard_error_nats,
        "parzen_sigma": model.sigma,
        "parzen_train_reference_nats": reference.mean_nats,
        "parzen_train_reference_standard_error_nats": reference.standard_error_nats,
        "parzen_train_reference_sigma": reference.sigma,
        "parzen_samples": float(samples.shape[0]),
    }
