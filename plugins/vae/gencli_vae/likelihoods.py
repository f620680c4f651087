"""The decoder's pixel distributions p(x|z): log-probabilities in nats per image, means, and draws.

* Bernoulli for binary images: one logit per pixel and channel; x is float 0/1.
* Discretized logistic for 8-bit grayscale/RGB (Salimans et al. 2017, PixelCNN++, one component): a
  location and a log-scale per pixel and channel; x is scaled to [-1, 1] and each of the 256 levels owns a
  bin of width 2/255, the two edge bins reaching to -inf and +inf so the probabilities sum to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PARAMS_PER_CHANNEL = {"bernoulli": 1, "logistic": 2}
HALF_BIN = 1.0 / 255.0  # half the width of one of the 256 levels on [-1, 1]
MIN_LOG_SCALE = -7.0


def to_model_space(pixels: torch.Tensor, likelihood: str, binary: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 pixels (B, C, H, W) -> what the model reads and scores: 0/1 floats or levels in [-1, 1]."""
    if likelihood == "bernoulli":
        if binary is None:
            raise ValueError("a Bernoulli model needs binarized pixels")
        return binary.float()
    return pixels.float() / 127.5 - 1.0


def log_prob(likelihood: str, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) summed over pixels and channels: params (B, C*P, H, W), x (B, C, H, W) -> (B,)."""
    if likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)
    location, log_scale = _logistic_params(params)
    return _discretized_logistic(location, log_scale, x).flatten(1).sum(1)


def mean(likelihood: str, params: torch.Tensor) -> torch.Tensor:
    """The decoder's mean image in [0, 1] (B, C, H, W): Bernoulli probabilities or logistic locations."""
    if likelihood == "bernoulli":
        return torch.sigmoid(params)
    location, _ = _logistic_params(params)
    return (location.clamp(-1.0, 1.0) + 1.0) / 2.0


def draw(likelihood: str, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random image per row from p(x|z), in [0, 1] (B, C, H, W)."""
    if likelihood == "bernoulli":
        probability = torch.sigmoid(params)
        return (torch.rand(probability.shape, generator=generator, device=params.device) < probability).float()
    location, log_scale = _logistic_params(params)
    u = torch.rand(location.shape, generator=generator, device=params.device).clamp(1e-5, 1 - 1e-5)
    x = location + log_scale.exp() * (torch.log(u) - torch.log1p(-u))  # inverse CDF of the logistic
    return (torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5)) / 255.0


def _logistic_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    location, log_scale = params.chunk(2, dim=1)  # (B, C, H, W) each
    return location, log_scale.clamp(min=MIN_LOG_SCALE)


def _discretized_logistic(location: torch.Tensor, log_scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log P(bin of x) per element, computed stably (log-sigmoids at the edges, a density in tiny bins)."""
    centred = x - location
    inverse_scale = torch.exp(-log_scale)
    upper = inverse_scale * (centred + HALF_BIN)
    lower = inverse_scale * (centred - HALF_BIN)
    log_cdf_upper = upper - F.softplus(upper)  # log sigmoid(upper): the whole left tail for level 0
    log_survival_lower = -F.softplus(lower)  # log(1 - sigmoid(lower)): the right tail for level 255
    bin_mass = torch.sigmoid(upper) - torch.sigmoid(lower)
    middle = inverse_scale * centred
    log_density_mid = middle - log_scale - 2.0 * F.softplus(middle)  # when the bin mass underflows
    log_bin = torch.where(bin_mass > 1e-5, torch.log(bin_mass.clamp(min=1e-12)),
                          log_density_mid + math.log(2 * HALF_BIN))
    return torch.where(x < -0.999, log_cdf_upper, torch.where(x > 0.999, log_survival_lower, log_bin))
