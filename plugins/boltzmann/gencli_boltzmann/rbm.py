"""A Bernoulli-Bernoulli RBM: energy E(v, h) = -v.W.h - b.v - c.h, trained by CD-k or PCD through a surrogate
loss whose gradient is the contrastive-divergence update, and scored by AIS (Salakhutdinov and Murray 2008).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli.errors import UsageError
from gencli.plugin import EvalRequest, SampleRequest

from gencli_boltzmann import common
from gencli_boltzmann.common import bernoulli, prepare  # noqa: F401  (prepare is the plugin's)


class RBM(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        visible = config.image_size ** 2
        self.weight = nn.Parameter(torch.randn(visible, config.hidden) * 0.01)  # W (V, H), Hinton's N(0, 0.01)
        self.visible_bias = nn.Parameter(torch.zeros(visible))  # b
        self.hidden_bias = nn.Parameter(torch.zeros(config.hidden))  # c
        # PCD's fantasy particles: a buffer, so checkpoints carry them and a resumed run continues the chains.
        self.register_buffer("chains", torch.zeros(config.chains, visible))
        self.register_buffer("chain_hidden", torch.zeros(config.chains, config.hidden))
        self.momentum, self.weight_decay = config.momentum, config.weight_decay  # read by configure_optimizer

    def hidden_probability(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.weight + self.hidden_bias)  # (B, H)

    def visible_probability(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)  # (B, V)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) = -b.v - sum_j softplus(c_j + v.W_j), per row (B,)."""
        return -(v @ self.visible_bias) - F.softplus(v @ self.weight + self.hidden_bias).sum(-1)


def build(config: Any) -> RBM:
    return RBM(config)


# ---- training -----------------------------------------------------------------------------------------------


def free_energy_from(v: torch.Tensor, hidden_input: torch.Tensor, visible_bias: torch.Tensor) -> torch.Tensor:
    """F(v) given the hidden inputs c + v.W already computed (one matmul shared with sampling)."""
    return -(v @ visible_bias) - F.softplus(hidden_input).sum(-1)


def loss(model: RBM, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """The CD-k / PCD-k step as a surrogate loss: mean F(data) - mean F(negative samples), the samples held
    constant. Its gradient is minus the CD update, e.g. for W -(<v p(h|v)>_data - <v p(h|v)>_negative),
    because dF/dW = -v p(h|v)^T.

    Five matmuls for CD-1 and six for PCD-1 (one more for the reconstruction error), as many as a hand-written
    update: the data's hidden inputs serve both the free energy and the first Gibbs step, and PCD keeps each
    chain's hidden sample as well as its visible one (like scikit-learn), so a sweep starts at h.
    """
    if options.k < 1:
        raise UsageError("--k must be at least 1")
    v = batch["binary"].flatten(1)  # (B, V) 0/1
    data_input = v @ model.weight + model.hidden_bias  # (B, H), with gradient
    with torch.no_grad():
        h_data = torch.sigmoid(data_input.detach())
        h_sample = bernoulli(h_data, None)
        reconstruction = model.visible_probability(h_sample)  # Hinton's reconstruction, for monitoring only
        if options.method == "cd":
            negative = bernoulli(reconstruction, None)
            hidden = h_sample
        else:
            hidden = model.chain_hidden
            negative = bernoulli(model.visible_probability(hidden), None)
        for _ in range(options.k - 1):
            hidden = bernoulli(model.hidden_probability(negative), None)
            negative = bernoulli(model.visible_probability(hidden), None)
    negative_input = negative @ model.weight + model.hidden_bias  # (B', H), with gradient
    if options.method == "pcd":
        with torch.no_grad():
            model.chains.copy_(negative)
            model.chain_hidden.copy_(bernoulli(torch.sigmoid(negative_input.detach()), None))
    gap = (free_energy_from(v, data_input, model.visible_bias).mean()
           - free_energy_from(negative, negative_input, model.visible_bias).mean())
    objective = gap
    if options.sparsity_target > 0:
        # Gradient cost * (mean activation - target) on each hidden bias only: over-active units are damped.
        excess = h_data.mean(0) - options.sparsity_target
        objective = objective + options.sparsity_cost * (excess * model.hidden_bias).sum()
    error = (v - reconstruction).square().sum(-1).mean()
    # The reported value is the reconstruction error (the usual progress measure: the CD objective has no
    # meaningful level); the gradient is exactly the objective's. Weight decay is the optimizer's.
    reported = objective - objective.detach() + error
    return reported, {"reconstruction_error": float(error), "free_energy_gap": float(gap.detach())}


# ---- sampling ----------------------------------------------------------------------------------------------


def sample(model: RBM, config: Any, options: Any, request: SampleRequest) -> Any:
    if options.filters:
        return common.filter_images(model.weight.detach(), request.n, config.image_size)
    if options.features is not None:
        image = common.image_probabilities(options.features, config.image_size).to(request.device)
        return common.features_text(image @ model.weight + model.hidden_bias, options.top, "hidden")
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    visible_units = config.image_size ** 2
    state = {"v": bernoulli(torch.full((request.n, visible_units), 0.5, device=request.device), generator)}

    def sweep() -> torch.Tensor:
        h = bernoulli(model.hidden_probability(state["v"]), generator)
        probability = model.visible_probability(h)
        state["v"] = bernoulli(probability, generator)
        return probability

    return common.run_chains(sweep, request.n, options, request, config.image_size)


# ---- evaluation ---------------------------------------------------------------------------------------------


@torch.no_grad()
def ais_log_partition(weight: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor,
                      base_bias: torch.Tensor, runs: int, betas: torch.Tensor,
                      generator: torch.Generator) -> torch.Tensor:
    """AIS log-weights (runs,) from the base-rate model (biases ``base_bias``, no weights) to the RBM; their
    log-mean-exp plus log Z_A estimates log Z (Salakhutdinov and Murray 2008, section 4.1).

    p*_beta(v) = exp((1 - beta) b_A.v + beta b.v) prod_j (1 + exp(beta (c_j + v.W_j))), the hidden units summed
    out; each temperature's transition is one Gibbs sweep of the RBM with energies scaled by beta.
    All runs advance together as one batch: two (runs x V x H) matmuls per temperature.
    """
    v = bernoulli(torch.sigmoid(base_bias).expand(runs, -1), generator)
    log_w = torch.zeros(runs, dtype=torch.float64, device=weight.device)
    bias_gap = (visible_bias - base_bias).double()
    previous = 0.0
    for index in range(1, len(betas)):
        beta = float(betas[index])
        inputs = v @ weight + hidden_bias  # (runs, H)
        wide = inputs.double()
        log_w += (beta - previous) * (v.double() @ bias_gap)
        log_w += (F.softplus(beta * wide) - F.softplus(previous * wide)).sum(-1)
        previous = beta
        if index < len(betas) - 1:  # a transition that leaves p_beta invariant
            h = bernoulli(torch.sigmoid(beta * inputs), generator)
            v = bernoulli(torch.sigmoid((1 - beta) * base_bias + beta * (h @ weight.T + visible_bias)), generator)
    return log_w


def base_log_partition(base_bias: torch.Tensor, hidden: int) -> float:
    """log Z_A of the base-rate model with ``hidden`` unconnected, zero-bias hidden units."""
    return float(F.softplus(base_bias.double()).sum()) + hidden * float(torch.log(torch.tensor(2.0)))


@torch.no_grad()
def pseudo_log_likelihood(model: RBM, v: torch.Tensor, chunk: int = 50) -> torch.Tensor:
    """Exact pseudo-log-likelihood sum_i log p(v_i | v_-i) per image (B,), in nats.

    Flipping bit i changes the hidden inputs by (1 - 2 v_i) W_i, so all V flips of an image cost one (V, H)
    tensor rather than V matmuls.
    """
    totals = []
    for rows in v.split(chunk):
        inputs = rows @ model.weight + model.hidden_bias  # (b, H)
        sign = 1 - 2 * rows  # (b, V): +1 where the bit is off (flipping turns it on)
        flipped = inputs[:, None, :] + sign[:, :, None] * model.weight[None]  # (b, V, H)
        # F(flipped) - F(v) = -sign * b_i - sum_j [softplus(flipped) - softplus(inputs)]
        delta = -sign * model.visible_bias - (F.softplus(flipped) - F.softplus(inputs)[:, None, :]).sum(-1)
        totals.append(F.logsigmoid(delta).sum(-1))  # log p(v_i | rest) = log sigmoid(F(flipped) - F(v))
    return torch.cat(totals)


def log_likelihood_report(model: RBM, held: common.HeldOut, options: Any, seed: int,
                          device: torch.device) -> dict[str, float]:
    """AIS log Z, the test log-likelihood and pseudo-log-likelihood, all in nats."""
    common.check_ais_options(options)
    generator = torch.Generator(device=device).manual_seed(seed)
    base_bias = common.base_rate_bias(held.base_rate, held.train_images).to(device)
    started = time.perf_counter()
    log_w = ais_log_partition(model.weight, model.visible_bias, model.hidden_bias, base_bias, options.ais_runs,
                              common.ais_betas(options.ais_betas).to(device), generator)
    log_mean, spread = common.log_mean_exp_with_spread(log_w)
    log_z = base_log_partition(base_bias, model.weight.shape[1]) + log_mean
    test = held.test.to(device)
    free_energy = model.free_energy(test).double()
    return {
        "test_log_likelihood_nats": float(-free_energy.mean()) - log_z,
        "log_z_nats": log_z,
        "log_z_std_nats": spread,  # standard error of the AIS estimate over runs
        "test_pseudo_log_likelihood_nats": float(pseudo_log_likelihood(model, test).mean()),
        "test_free_energy_nats": float(free_energy.mean()),
        "ais_seconds": time.perf_counter() - started,
    }


def evaluate(model: RBM, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    held = common.held_out(request.data, config.image_size)
    return log_likelihood_report(model, held, options, request.seed, request.device)
