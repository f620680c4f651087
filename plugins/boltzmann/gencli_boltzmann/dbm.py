"""A two-layer deep Boltzmann machine (Salakhutdinov and Hinton 2009):
E(v, h1, h2) = -v.W1.h1 - h1.W2.h2 - b.v - c1.h1 - c2.h2.

One ``gencli train dbm`` run has three phases, chosen by a step counter kept in the weights (so a resumed run
stays in the right phase):

1. steps [0, P): the bottom RBM (v, h1), CD-1, with doubled bottom-up input p(h1|v) = sigm(2 v.W1 + c1);
2. steps [P, 2P): the top RBM (h1, h2) on samples of that posterior, CD-1, with doubled top-down input
   p(h1|h2) = sigm(2 W2.h2 + a) (the doubling makes the two halves add up right once stacked);
3. from 2P on: joint training, mean-field posteriors for the data statistics and persistent Gibbs chains
   for the model statistics.

Every phase is a surrogate loss mean E(data statistics) - mean E(model statistics) with the hidden states held
constant: its gradient is the learning rule's update (e.g. for W1, -(<v mu1> - <v h1>_model)).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli import messages
from gencli.errors import UsageError
from gencli.plugin import EvalRequest, SampleRequest, Text, no_progress

from gencli_boltzmann import common
from gencli_boltzmann.common import bernoulli, prepare  # noqa: F401  (prepare is the plugin's)


class DBM(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        visible = config.image_size ** 2
        self.weight1 = nn.Parameter(torch.randn(visible, config.hidden1) * 0.01)  # (V, H1)
        self.weight2 = nn.Parameter(torch.randn(config.hidden1, config.hidden2) * 0.01)  # (H1, H2)
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden1_bias = nn.Parameter(torch.zeros(config.hidden1))
        self.hidden2_bias = nn.Parameter(torch.zeros(config.hidden2))
        self.top_rbm_bias = nn.Parameter(torch.zeros(config.hidden1))  # h1's own bias in the top RBM (phase 2)
        self.register_buffer("chains", torch.zeros(config.chains, visible))
        self.register_buffer("chain_hidden1", torch.zeros(config.chains, config.hidden1))
        self.register_buffer("chain_hidden2", torch.zeros(config.chains, config.hidden2))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))  # training steps taken: picks the phase

    def energy(self, v: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """E(v, h1, h2) per row (B,); with mean-field probabilities in place of states it is the expected
        energy under the factorised distribution (E is linear in each layer)."""
        return (-((v @ self.weight1) * h1).sum(-1) - ((h1 @ self.weight2) * h2).sum(-1)
                - v @ self.visible_bias - h1 @ self.hidden1_bias - h2 @ self.hidden2_bias)

    def hidden1_probability(self, v: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.weight1 + h2 @ self.weight2.T + self.hidden1_bias)

    def visible_probability(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h1 @ self.weight1.T + self.visible_bias)

    def hidden2_probability(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h1 @ self.weight2 + self.hidden2_bias)

    def recognition(self, v: torch.Tensor) -> torch.Tensor:
        """The pretrained bottom-up guess of h1: doubled input stands in for the missing top-down half."""
        return torch.sigmoid(2 * (v @ self.weight1) + self.hidden1_bias)

    @torch.no_grad()
    def mean_field(self, v: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed-point updates of q(h1) q(h2) for data v: mu1 = sigm(v.W1 + W2.mu2 + c1), mu2 = sigm(mu1.W2 + c2)."""
        bottom_up = v @ self.weight1 + self.hidden1_bias  # (B, H1), the same at every update
        mu1 = self.recognition(v)
        mu2 = self.hidden2_probability(mu1)
        for _ in range(steps):
            mu1 = torch.sigmoid(bottom_up + mu2 @ self.weight2.T)
            mu2 = self.hidden2_probability(mu1)
        return mu1, mu2


def build(config: Any) -> DBM:
    return DBM(config)


# ---- training -----------------------------------------------------------------------------------------------


def rbm_energy(bottom: torch.Tensor, top: torch.Tensor, weight: torch.Tensor, bottom_bias: torch.Tensor,
               top_bias: torch.Tensor) -> torch.Tensor:
    return -((bottom @ weight) * top).sum(-1) - bottom @ bottom_bias - top @ top_bias


def pretrain_bottom(model: DBM, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CD-1 on the bottom RBM with doubled bottom-up weights; returns (surrogate, reconstruction error)."""
    with torch.no_grad():
        h = model.recognition(v)
        reconstruction = model.visible_probability(bernoulli(h, None))
        negative = bernoulli(reconstruction, None)
        h_negative = model.recognition(negative)
    w, b, c = model.weight1, model.visible_bias, model.hidden1_bias
    surrogate = rbm_energy(v, h, w, b, c).mean() - rbm_energy(negative, h_negative, w, b, c).mean()
    return surrogate, (v - reconstruction).square().sum(-1).mean()


def pretrain_top(model: DBM, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CD-1 on the top RBM, trained on samples of the bottom RBM's posterior, with doubled top-down weights."""
    with torch.no_grad():
        x = bernoulli(model.recognition(v), None)  # (B, H1), the top RBM's data
        h2 = model.hidden2_probability(x)
        reconstruction = torch.sigmoid(2 * (bernoulli(h2, None) @ model.weight2.T) + model.top_rbm_bias)
        negative = bernoulli(reconstruction, None)
        h2_negative = model.hidden2_probability(negative)
    w, a, c = model.weight2, model.top_rbm_bias, model.hidden2_bias
    surrogate = rbm_energy(x, h2, w, a, c).mean() - rbm_energy(negative, h2_negative, w, a, c).mean()
    return surrogate, (x - reconstruction).square().sum(-1).mean()


@torch.no_grad()
def start_joint_training(model: DBM, v: torch.Tensor) -> None:
    """At the start of phase 3: h1's bias is the mean of the two RBMs' (each modelled h1 alone), and the
    persistent chains start from uniform noise. (Chains started at training images stay near the data and never
    find the spurious modes the pretrained model has, so learning never removes them.)"""
    model.hidden1_bias.copy_((model.hidden1_bias + model.top_rbm_bias) / 2)
    model.chains.copy_(bernoulli(torch.full_like(model.chains, 0.5), None))
    model.chain_hidden1.copy_(bernoulli(model.recognition(model.chains), None))
    model.chain_hidden2.copy_(bernoulli(model.hidden2_probability(model.chain_hidden1), None))


def joint(model: DBM, v: torch.Tensor, options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """PCD with mean-field: data statistics from q(h | v), model statistics from the persistent chains."""
    mu1, mu2 = model.mean_field(v, options.mean_field_steps)
    with torch.no_grad():
        h2 = model.chain_hidden2
        v_sample = model.chains
        for _ in range(options.k):
            h1 = bernoulli(model.hidden1_probability(v_sample, h2), None)
            v_probability, h2_probability = model.visible_probability(h1), model.hidden2_probability(h1)
            v_sample, h2 = bernoulli(v_probability, None), bernoulli(h2_probability, None)
        model.chains.copy_(v_sample)
        model.chain_hidden1.copy_(h1)
        model.chain_hidden2.copy_(h2)
        reconstruction = model.visible_probability(mu1)
    # The chains' v and h2 enter as p(. | h1): the same expected gradient with less noise (Rao-Blackwellised).
    surrogate = model.energy(v, mu1, mu2).mean() - model.energy(v_probability, h1, h2_probability).mean()
    return surrogate, (v - reconstruction).square().sum(-1).mean()


def loss(model: DBM, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    if options.k < 1 or options.pretrain_steps < 0 or options.mean_field_steps < 1:
        raise UsageError("--k and --mean-field-steps must be at least 1, --pretrain-steps at least 0")
    v = batch["binary"].flatten(1)  # (B, V) 0/1
    step, pretrain = int(model.step), options.pretrain_steps
    with torch.no_grad():
        model.step += 1
    if step < pretrain:
        phase, scale, weights, (surrogate, error) = 1, 1.0, [model.weight1], pretrain_bottom(model, v)
    elif step < 2 * pretrain:
        phase, scale, weights, (surrogate, error) = 2, 1.0, [model.weight2], pretrain_top(model, v)
    else:
        if step == 2 * pretrain:
            start_joint_training(model, v)
        phase, scale, weights = 3, options.joint_lr_scale, [model.weight1, model.weight2]
        surrogate, error = joint(model, v, options)
    decay = 0.5 * options.weight_decay * sum(w.square().sum() for w in weights)
    objective = scale * (surrogate + decay)
    # The value reported is the phase's reconstruction error (of v, or of h1 while the top RBM pretrains);
    # the gradient is the objective's.
    return objective - objective.detach() + error, {"reconstruction_error": float(error), "phase": float(phase),
                                                    "energy_gap": float(surrogate.detach())}


# ---- sampling ----------------------------------------------------------------------------------------------


def sample(model: DBM, config: Any, options: Any, request: SampleRequest) -> Any:
    if options.filters:
        return common.filter_images(model.weight1.detach(), request.n, config.image_size)
    if options.features is not None:
        image = common.image_probabilities(options.features, config.image_size).to(request.device)
        mu1, mu2 = model.mean_field(image, 30)
        input1 = image @ model.weight1 + mu2 @ model.weight2.T + model.hidden1_bias  # mu1 = sigm(input1)
        input2 = mu1 @ model.weight2 + model.hidden2_bias
        first = common.features_text(input1, options.top, "layer-1")
        second = common.features_text(input2, options.top, "layer-2")
        return Text([*first.chunks, *second.chunks])
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    visible_units = config.image_size ** 2
    if options.start == "chains":
        picked = common.chain_starts(model.chains, request.n, generator)
        state = {"v": model.chains[picked].clone(), "h2": model.chain_hidden2[picked].clone()}
    else:
        state = {"v": bernoulli(torch.full((request.n, visible_units), 0.5, device=request.device), generator),
                 "h2": torch.zeros(request.n, config.hidden2, device=request.device)}

    def sweep() -> torch.Tensor:
        h1 = bernoulli(model.hidden1_probability(state["v"], state["h2"]), generator)
        probability = model.visible_probability(h1)
        state["v"] = bernoulli(probability, generator)
        state["h2"] = bernoulli(model.hidden2_probability(h1), generator)
        return probability

    return common.run_chains(sweep, request.n, options, request, config.image_size)


# ---- evaluation ---------------------------------------------------------------------------------------------


@torch.no_grad()
def ais_log_partition(model: DBM, base_bias: torch.Tensor, runs: int, betas: torch.Tensor,
                      generator: torch.Generator, progress: Callable[..., None] = no_progress) -> torch.Tensor:
    """AIS log-weights (runs,) for the DBM with v and h2 summed out analytically, so the chains live on h1
    alone (Salakhutdinov and Hinton 2009, section 3.1):

    p*_beta(h1) = exp((1 - beta) a.h1 + beta c1.h1) prod_i (1 + e^{beta (b + W1.h1)_i}) prod_k (1 + e^{beta (c2 + h1.W2)_k})

    from the base-rate model on h1 (biases a, v and h2 unconnected) to beta = 1. A transition samples v and h2
    given h1, then h1 given both, all with energies scaled by beta.
    """
    h1 = bernoulli(torch.sigmoid(base_bias).expand(runs, -1), generator)
    log_w = torch.zeros(runs, dtype=torch.float64, device=base_bias.device)
    bias_gap = (model.hidden1_bias - base_bias).double()
    previous = 0.0
    for index in range(1, len(betas)):
        beta = float(betas[index])
        down = h1 @ model.weight1.T + model.visible_bias  # (runs, V)
        up = h1 @ model.weight2 + model.hidden2_bias  # (runs, H2)
        log_w += (beta - previous) * (h1.double() @ bias_gap)
        for inputs in (down.double(), up.double()):
            log_w += (F.softplus(beta * inputs) - F.softplus(previous * inputs)).sum(-1)
        previous = beta
        if index < len(betas) - 1:
            v = bernoulli(torch.sigmoid(beta * down), generator)
            h2 = bernoulli(torch.sigmoid(beta * up), generator)
            h1_input = v @ model.weight1 + h2 @ model.weight2.T + model.hidden1_bias
            h1 = bernoulli(torch.sigmoid((1 - beta) * base_bias + beta * h1_input), generator)
        progress(index, len(betas) - 1)
    return log_w


def base_log_partition(model: DBM, base_bias: torch.Tensor) -> float:
    """log Z of the base model: h1 with biases ``base_bias``, v and h2 unconnected with zero biases."""
    free_units = model.weight1.shape[0] + model.weight2.shape[1]
    return float(F.softplus(base_bias.double()).sum()) + free_units * float(torch.log(torch.tensor(2.0)))


def entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.double().clamp(1e-12, 1 - 1e-12)
    return -(p * p.log() + (1 - p) * (1 - p).log()).sum(-1)


@torch.no_grad()
def variational_bound(model: DBM, v: torch.Tensor, steps: int) -> torch.Tensor:
    """log p*(v) >= -E_q[E(v, h)] + H(q) per image (B,), q the mean-field posterior (subtract log Z)."""
    mu1, mu2 = model.mean_field(v, steps)
    return -model.energy(v, mu1, mu2).double() + entropy(mu1) + entropy(mu2)


def evaluate(model: DBM, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    common.check_ais_options(options)
    if options.mean_field_steps < 1:
        raise UsageError("--mean-field-steps must be at least 1")
    device = request.device
    data = common.evaluation_data(request, config)
    held = common.held_out(data, config.image_size)
    request.describe_data(held.description)
    # The base model's h1 biases: the logit of h1's mean-field marginals over the training images.
    train_images = common.training_images(data, config.image_size)
    train = common.fixed_binarization(train_images, "train").flatten(1).to(device)
    mu1, _ = model.mean_field(train, options.mean_field_steps)
    base_bias = common.base_rate_bias(mu1.mean(0), train.shape[0])
    generator = torch.Generator(device=device).manual_seed(request.seed)
    runs, temperatures = ais_size(options)
    started = time.perf_counter()
    log_w = ais_log_partition(model, base_bias, runs, common.ais_betas(temperatures).to(device), generator,
                              request.progress)
    log_mean, spread = common.log_mean_exp_with_spread(log_w)
    log_z = base_log_partition(model, base_bias) + log_mean
    bound = variational_bound(model, held.test.to(device), options.mean_field_steps)
    figure = float(bound.mean()) - log_z
    if options.quick:
        messages.note(f"quick estimate ({runs} AIS runs x {temperatures:,} temperatures): lower bound {figure:.2f} "
                      f"nats, log Z standard error {spread:.2f} nats; it tends to read a few nats high (too few "
                      "temperatures), so report the full estimate (without --quick)")
    return {
        "test_log_likelihood_lower_bound_nats": figure,
        "log_z_nats": log_z,
        "log_z_std_nats": spread,
        "ais_runs": runs,
        "ais_temperatures": temperatures,
        "ais_seconds": time.perf_counter() - started,
    }


# Runs and temperatures of --quick: a 24th of the default 100 x 14,500 work. On the bundled DBM: -108.7 nats
# (log Z s.e. 0.95) in 8 s of AIS, against -111.7 for the full estimate; 1,000 temperatures read -98.7 (AIS
# with few temperatures underestimates log Z, so the bound reads high, whatever the spread of the runs says).
QUICK_AIS = (20, 3000)


def ais_size(options: Any) -> tuple[int, int]:
    """(AIS runs, temperatures) for this evaluation: the typed ones, capped by --quick."""
    if options.quick:
        return min(options.ais_runs, QUICK_AIS[0]), min(options.ais_betas, QUICK_AIS[1])
    return options.ais_runs, options.ais_betas
