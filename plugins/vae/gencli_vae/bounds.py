"""The ELBO and the importance-weighted bound, both from the same log-weights.

For z_1..z_k drawn from q(z|x), log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) (Burda et al. 2015, eq. 7):

* the ELBO estimate is the mean of the log w_i (Kingma and Welling 2013, eq. 2 with a Monte Carlo KL);
* the IWAE bound is log (1/k) sum_i w_i, which equals the ELBO estimate when k = 1, grows with k in
  expectation and tends to log p(x); with a large k it is the standard log-likelihood estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2 * math.pi)


@dataclass
class LogWeights:
    """Per importance sample and image, in nats: each term (K, B); the posterior's parameters (B, Z)."""

    log_px: torch.Tensor  # log p(x | z_i)
    log_pz: torch.Tensor  # log p(z_i) under the N(0, I) prior
    log_qz: torch.Tensor  # log q(z_i | x)
    mean: torch.Tensor
    log_var: torch.Tensor

    def total(self, kl_weight: float = 1.0) -> torch.Tensor:
        """log w (K, B); ``kl_weight`` < 1 down-weights the prior/posterior ratio (KL warm-up)."""
        return self.log_px + kl_weight * (self.log_pz - self.log_qz)


def standard_normal_log_density(value: torch.Tensor) -> torch.Tensor:
    return -0.5 * (value.square() + LOG_2PI)


def iwae_bound(weights: LogWeights, kl_weight: float = 1.0) -> torch.Tensor:
    """log (1/K) sum_i w_i per image (B,)."""
    log_w = weights.total(kl_weight)
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def elbo_estimate(weights: LogWeights) -> torch.Tensor:
    """The Monte Carlo ELBO per image (B,): the mean over the K samples of log w."""
    return weights.total().mean(dim=0)


def analytic_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per latent dimension (B, Z) in closed form (Kingma and Welling, appendix B)."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)
