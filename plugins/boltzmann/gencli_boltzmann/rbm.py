"""A Bernoulli-Bernoulli RBM: energy E(v, h) = -v.W.h - b.v - c.h, trained by CD-k or PCD through a surrogate
loss whose gradient is the contrastive-divergence update, and scored by AIS (Salakhutdinov and Murray 2008).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gencli.errors import UsageError
from gencli.plugin import EvalRequest, SampleRequest

from gencli_boltzmann import common
from gencli_boltzmann.common import RandomBits, bernoulli, bernoulli16


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


def prepare(data: str | None, config: Any, options: Any) -> Any:
    """The training batches as 8-bit intensities: each step binarizes them itself (``data_states``), from the same
    stream of bits as its Gibbs samples; on the kernels' path 0.1 ms for 100 digits, where the engine's torch.rand
    binarization took 0.4 ms (one AVX2 thread)."""
    return common.prepare(data, config, options, binary=False)


def data_states(batch: dict[str, torch.Tensor], dtype: torch.dtype, bits: RandomBits) -> torch.Tensor:
    """The batch's visible states (B, V): its "binary" images as given, else its "pixels" binarized, P(1) = p / 255,
    by ``bernoulli16`` (the step's first draws)."""
    if "binary" in batch:
        return batch["binary"].flatten(1).to(dtype)
    return bernoulli16(batch["pixels"].flatten(1).float() / 255.0, dtype, bits)


def step_bits(model: RBM) -> RandomBits:
    """A step's random bits; made by numba where the step may run on the kernels (wide enough), so that a tiny model
    never waits for numba to load."""
    return RandomBits(compiled=model.weight.shape[1] >= MIN_WIDTH)


def free_energy_from(v: torch.Tensor, hidden_input: torch.Tensor, visible_bias: torch.Tensor) -> torch.Tensor:
    """F(v) given the hidden inputs c + v.W already computed (one matmul shared with sampling)."""
    return -(v @ visible_bias) - F.softplus(hidden_input).sum(-1)


# Rows of each batch whose reconstruction PCD computes: there it only monitors training, and 20 rows a step,
# averaged over a log window, track the whole batch's error at a fifth of a matmul.
MONITORED_ROWS = 20


def negative_phase(model: RBM, products: Any, data_hidden: torch.Tensor, options: Any,
                   bits: RandomBits) -> tuple[torch.Tensor, torch.Tensor]:
    """(Hinton's reconstruction of the data, for monitoring; the negative visible samples) given p(h|data).

    ``products`` multiplies the model's W, in the dtype its matmuls run in, by unit states (``up``: v @ W,
    ``down``: h @ W^T); the sampled states are made in that dtype. CD starts its k Gibbs sweeps at the
    reconstruction, sampled; PCD continues its persistent chains, which keep each chain's hidden sample as well
    as its visible one (like scikit-learn), so a sweep starts at h.
    """
    if options.k < 1:
        raise UsageError("--k must be at least 1")
    states = products.weight.dtype

    def visible(h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(products.down(h) + model.visible_bias)  # (B, V)

    if options.method == "cd":
        reconstruction = visible(bernoulli16(data_hidden, states, bits))
        negative = bernoulli16(reconstruction, states, bits)
    else:
        reconstruction = visible(bernoulli16(data_hidden[:MONITORED_ROWS], states, bits))
        negative = bernoulli16(visible(model.chain_hidden.to(states)), states, bits)
    for _ in range(options.k - 1):
        hidden = bernoulli16(torch.sigmoid(products.up(negative) + model.hidden_bias), states, bits)
        negative = bernoulli16(visible(hidden), states, bits)
    return reconstruction, negative


class DenseProducts:
    """``negative_phase``'s products as plain matmuls (``loss``, and ``gradients`` off the kernels' path)."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight

    def up(self, visible: torch.Tensor) -> torch.Tensor:
        return visible @ self.weight  # (B, V) @ (V, H)

    def down(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.weight.T  # (B, H) @ (H, V)


def keep_chains(model: RBM, negative: torch.Tensor, negative_hidden: torch.Tensor, options: Any,
                bits: RandomBits) -> None:
    """PCD: the negative samples (and a hidden sample of them) are where the chains continue next step."""
    if options.method == "pcd":
        model.chains.copy_(negative)
        model.chain_hidden.copy_(bernoulli16(negative_hidden, None, bits))


def loss(model: RBM, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """The CD-k / PCD-k step as a surrogate loss: mean F(data) - mean F(negative samples), the samples held
    constant. Its gradient is minus the CD update, e.g. for W -(<v p(h|v)>_data - <v p(h|v)>_negative),
    because dF/dW = -v p(h|v)^T. This is the definition; training runs ``gradients``, its hand-written twin.
    """
    bits = step_bits(model)
    v = data_states(batch, model.weight.dtype, bits)  # (B, V) 0/1
    data_input = v @ model.weight + model.hidden_bias  # (B, H), with gradient
    with torch.no_grad():
        data_hidden = torch.sigmoid(data_input.detach())
        reconstruction, negative = negative_phase(model, DenseProducts(model.weight.detach()), data_hidden,
                                                  options, bits)
    negative_input = negative @ model.weight + model.hidden_bias  # (B', H), with gradient
    with torch.no_grad():
        keep_chains(model, negative, torch.sigmoid(negative_input.detach()), options, bits)
    objective = (free_energy_from(v, data_input, model.visible_bias).mean()
                 - free_energy_from(negative, negative_input, model.visible_bias).mean())
    if options.sparsity_target > 0:
        # Gradient cost * (mean activation - target) on each hidden bias only: over-active units are damped.
        objective = objective + options.sparsity_cost * (sparsity_excess(data_hidden, options)
                                                         * model.hidden_bias).sum()
    error = reconstruction_error(v, reconstruction)
    # The reported value is the reconstruction error (the usual progress measure: the CD objective has no
    # meaningful level); the gradient is exactly the objective's. Weight decay is the optimizer's.
    return objective - objective.detach() + error, {}


def gradients(model: RBM, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """The gradient of ``loss``'s objective written out, set on the parameters without autograd (the engine's
    hook for closed-form updates): the same random numbers in the same order, one fewer matmul (the positive
    and negative statistics of W are one product of stacked rows), no backward graph, and W cast to the
    autocast dtype once per step rather than at every matmul. Under ``--precision bf16`` this halves the step
    time of autograd on the surrogate. In float32 on the CPU the step runs as two numba kernels instead
    (``kernel_gradients``), from the same random bits."""
    if runs_on_kernels(model):
        return kernel_gradients(model, batch, options)
    weight = model.weight.to(matmul_dtype(model.weight))
    products = DenseProducts(weight)
    bits = step_bits(model)
    v = data_states(batch, weight.dtype, bits)
    data_hidden = torch.sigmoid(products.up(v) + model.hidden_bias)
    reconstruction, negative = negative_phase(model, products, data_hidden, options, bits)
    negative_hidden = torch.sigmoid(products.up(negative) + model.hidden_bias)
    keep_chains(model, negative, negative_hidden, options, bits)
    n, m = v.shape[0], negative.shape[0]
    # d/dW [mean F(data) - mean F(negative)] = <v h^T>_negative - <v h^T>_data, as one (V, B'+B) x (B'+B, H)
    # product: the difference accumulates in float32 even when the matmul runs in bf16.
    hidden = torch.cat([negative_hidden / m, data_hidden / -n]).to(weight.dtype)
    model.weight.grad = (torch.cat([negative, v]).T @ hidden).to(model.weight.dtype)
    model.visible_bias.grad = negative.float().mean(0) - v.float().mean(0)
    model.hidden_bias.grad = negative_hidden.mean(0) - data_hidden.mean(0)
    if options.sparsity_target > 0:
        model.hidden_bias.grad += options.sparsity_cost * sparsity_excess(data_hidden, options)
    return reconstruction_error(v, reconstruction), {}


# Narrower hidden layers than this train on torch's matmuls: a tiny model never waits for numba to load.
MIN_WIDTH = 128


def runs_on_kernels(model: RBM) -> bool:
    """Whether ``gradients`` runs the numba kernels: float32 matmuls on the CPU, a hidden layer of MIN_WIDTH or
    more units."""
    weight = model.weight
    return (weight.device.type == "cpu" and weight.dtype == torch.float32 and matmul_dtype(weight) == torch.float32
            and weight.shape[1] >= MIN_WIDTH)


class KernelWorkspace:
    """The kernels' arrays for one batch and chain count, kept between steps (allocating them is a tenth of a
    step at batch 10). The weight gradient is one of them: the engine sets .grad to None before each step."""

    def __init__(self, rows: int, chains: int, reconstructed: int, visible: int, hidden: int) -> None:
        self.key = (rows, chains, reconstructed, visible, hidden)
        # The three inputs the sigmoid turns into probabilities, in one buffer: one torch.sigmoid_ call.
        self.inputs = torch.empty(rows * hidden + chains * hidden + reconstructed * visible)
        data_end, negative_end = rows * hidden, (rows + chains) * hidden
        self.data_input = self.inputs[:data_end].view(rows, hidden)
        self.negative_input = self.inputs[data_end:negative_end].view(chains, hidden)
        self.reconstruction_input = self.inputs[negative_end:].view(reconstructed, visible)
        self.transposed = torch.empty(hidden, visible)
        self.negative = torch.empty(chains, visible)
        self.data = torch.empty(rows, visible)  # the batch's 0/1 states, as gibbs binarizes them
        self.data_array = self.data.numpy()
        self.grads = (torch.empty(visible, hidden), torch.empty(visible), torch.empty(hidden))  # W, b, c
        self.scaled = torch.empty(rows + chains, hidden)
        # The columns of the ones of each negative, then each data row, and how many (gibbs writes, statistics
        # reads); per visible unit, how many rows have it on, where its list starts, the lists.
        self.ones = torch.empty(chains + rows, visible, dtype=torch.int32)
        self.ones_counts = torch.empty(chains + rows, dtype=torch.int64)
        self.column_counts = torch.empty(visible, dtype=torch.int64)
        self.offsets = torch.empty(visible + 1, dtype=torch.int64)
        self.members = torch.empty((rows + chains) * visible, dtype=torch.int32)
        self.where = torch.empty(max(visible, hidden), dtype=torch.int32)
        self.hidden_state = torch.empty(hidden)
        self.visible_input = torch.empty(visible)
        # numpy views for the kernels, made once (at batch 10 a step's few dozen conversions are 2% of it)
        self.gibbs_arrays = tuple(tensor.numpy() for tensor in (
            self.data_input, self.reconstruction_input))
        self.negative_arrays = (self.negative_input.numpy(),)
        self.scratch_arrays = tuple(tensor.numpy() for tensor in (
            self.ones, self.ones_counts, self.where, self.hidden_state, self.visible_input))
        self.statistics_arrays = tuple(tensor.numpy() for tensor in (
            self.scaled, self.column_counts, self.offsets, self.members))
        self.grad_arrays = tuple(grad.numpy() for grad in self.grads)
        self.draws: dict[tuple[bool, int, bool], tuple[int, np.ndarray]] = {}  # 64-bit words, block starts

    def __deepcopy__(self, memo: dict) -> None:
        """A copied model starts without a workspace (a copy's numpy views would not share its tensors)."""
        return None

    def bit_draws(self, persistent: bool, k: int, binarize: bool) -> tuple[int, np.ndarray]:
        """How many 64-bit words the step draws, and where each block of 16-bit draws starts (kernels.bit_blocks:
        each bernoulli16 call of the torch step draws whole words)."""
        if (persistent, k, binarize) not in self.draws:
            from gencli_boltzmann import kernels

            words = [(count + 3) // 4 for count in kernels.bit_blocks(persistent, k, *self.key, binarize=binarize)]
            self.draws[persistent, k, binarize] = (sum(words), np.cumsum([0] + words[:-1]) * 4)
        return self.draws[persistent, k, binarize]


def kernel_gradients(model: RBM, batch: dict[str, torch.Tensor],
                     options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """``gradients`` in float32 on the CPU, by ``kernels.gibbs`` and ``kernels.statistics``: the same random
    bits in the same order as the torch step (one draw for the whole step), samples that differ from it only
    where a probability rounds differently across one of the 65,536 thresholds, and the same gradients."""
    from gencli_boltzmann import kernels

    if options.k < 1:
        raise UsageError("--k must be at least 1")
    binarize = "binary" not in batch  # intensities, binarized in the kernel from the step's first block of draws
    pixels = batch["pixels"].flatten(1) if binarize else batch["binary"].flatten(1).to(torch.uint8)
    rows, visible = pixels.shape
    hidden = model.weight.shape[1]
    persistent = options.method == "pcd"
    chains = model.chains.shape[0] if persistent else rows
    monitored = min(MONITORED_ROWS, rows) if persistent else rows  # rows of the reconstruction
    work = getattr(model, "kernel_workspace", None)
    if work is None or work.key != (rows, chains, monitored, visible, hidden):
        work = model.kernel_workspace = KernelWorkspace(rows, chains, monitored, visible, hidden)
    words, starts = work.bit_draws(persistent, options.k, binarize)
    bits = step_bits(model).words(words).view(np.int16)
    negative = model.chains.numpy() if persistent else work.negative.numpy()  # PCD's chains continue there
    chain_hidden, v = model.chain_hidden.numpy(), work.data_array
    data_input, reconstruction_input = work.gibbs_arrays
    # gibbs lays W^T out every step: a cache keyed on W's version would miss the fused SGD's updates, which
    # leave the version count alone (torch 2.13).
    kernels.gibbs(model.weight.detach().numpy(), work.transposed.numpy(), model.visible_bias.detach().numpy(),
                  model.hidden_bias.detach().numpy(), pixels.contiguous().numpy(), binarize, kernels.PIXEL_THRESHOLDS,
                  v, chain_hidden, persistent, options.k, monitored, kernels.LOGIT, bits, starts, data_input,
                  reconstruction_input, negative, *work.negative_arrays, chain_hidden, *work.scratch_arrays)
    torch.sigmoid_(work.inputs)  # data_input, negative_input and reconstruction_input become probabilities
    model.weight.grad, model.visible_bias.grad, model.hidden_bias.grad = work.grads
    ones, ones_counts = work.scratch_arrays[:2]
    error = kernels.statistics(v, data_input, *work.negative_arrays, reconstruction_input, ones, ones_counts,
                               *work.grad_arrays, *work.statistics_arrays)
    if options.sparsity_target > 0:
        model.hidden_bias.grad += options.sparsity_cost * sparsity_excess(work.data_input, options)
    return torch.tensor(error, dtype=torch.float32), {}


def matmul_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype the run's autocast gives matmuls (bf16 under --precision bf16), else the weight's own."""
    kind = weight.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else weight.dtype


def sparsity_excess(data_hidden: torch.Tensor, options: Any) -> torch.Tensor:
    """Each hidden unit's mean activation on the batch minus the wanted one (Lee et al. 2008)."""
    return data_hidden.mean(0) - options.sparsity_target


def reconstruction_error(v: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Squared error per image between the data and its reconstruction (of the first rows, for PCD)."""
    return (v[:reconstruction.shape[0]].float() - reconstruction.float()).square().sum(-1).mean()


# ---- sampling ----------------------------------------------------------------------------------------------


def sample(model: RBM, config: Any, options: Any, request: SampleRequest) -> Any:
    if options.filters:
        return common.filter_images(model.weight.detach(), request.n, config.image_size)
    if options.features is not None:
        image = common.image_probabilities(options.features, config.image_size).to(request.device)
        return common.features_text(image @ model.weight + model.hidden_bias, options.top, "hidden")
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    visible_units = config.image_size ** 2
    if options.start == "chains":
        state = {"v": model.chains[common.chain_starts(model.chains, request.n, generator)].clone()}
    else:
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
    held = common.held_out(common.evaluation_data(request, config), config.image_size)
    request.describe_data(held.description)
    return log_likelihood_report(model, held, options, request.seed, request.device)
