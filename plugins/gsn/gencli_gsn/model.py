"""The GSN: a visible layer x and hidden layers h_1..h_L, neighbours joined by tied weights W_l (one matrix
used upwards and, transposed, downwards), updated like a deep Boltzmann machine's Gibbs sweep.

One step of the chain (Bengio et al. 2014, section 3 and the MNIST experiments):

    odd layers first:   h_l = tanh(W_l^T h_{l-1} + W_{l+1} h_{l+1} + b_l + noise) + noise
    then even layers:   x_hat = sigmoid(W_1 h_1 + b_0),  h_2, h_4, ... as above

where the visible input is the chain's current sample with salt-and-pepper noise and every noise term is
Gaussian (std ``hidden_noise``, before and after the tanh; none on h_1 with ``noiseless_first``, the paper's
code's default). The next step's visible state is a Bernoulli draw from x_hat. Walkback training runs this
chain ``--walkbacks`` steps from a training digit, backpropagating through the whole unrolled graph, and
scores every step's x_hat against the digit (cross-entropy, nats).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gencli.data.images import EMBEDDED, ImageBatches, data_split
from gencli.errors import UsageError
from gencli.plugin import Prepared


class GSNNet(nn.Module):
    def __init__(self, *, visible: int, hidden: int, layers: int, salt_pepper: float, hidden_noise: float,
                 noiseless_first: bool) -> None:
        super().__init__()
        sizes = [visible] + [hidden] * layers
        # weights[l - 1] joins layer l - 1 (rows) and layer l (columns); Glorot-uniform, as for tanh units.
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(below, above).uniform_(-1.0, 1.0) * math.sqrt(6.0 / (below + above)))
            for below, above in zip(sizes[:-1], sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(size)) for size in sizes)  # b_0 (visible) .. b_L
        # Whether b_0 has been set from the first training batch (see initialise_visible_bias); saved with the weights.
        self.register_buffer("visible_bias_set", torch.zeros((), dtype=torch.bool))
        self.salt_pepper, self.hidden_noise, self.noiseless_first = salt_pepper, hidden_noise, noiseless_first

    @property
    def layers(self) -> int:
        return len(self.weights)

    @torch.no_grad()
    def initialise_visible_bias(self, clean: torch.Tensor) -> None:
        """b_0 = logit of the batch's mean pixels (B, V), once, before the first update (as the paper's code does
        with the training set's means). Tied tanh weights make the network nearly symmetric under x -> 1 - x, so
        from a zero bias a chain falls as readily into white-background negatives of digits as into digits; a
        bias of -7 on the always-dark border pixels breaks that symmetry."""
        if not bool(self.visible_bias_set):
            mean = clean.mean(0).clamp(1e-3, 1 - 1e-3)  # (V,)
            self.biases[0].copy_(torch.log(mean) - torch.log1p(-mean))
            self.visible_bias_set.fill_(True)

    def initial_hiddens(self, batch: int) -> list[torch.Tensor]:
        device = self.biases[0].device
        return [torch.zeros(batch, b.numel(), device=device) for b in self.biases[1:]]

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Salt-and-pepper noise: each pixel, with probability salt_pepper, becomes 0 or 1 (a fair coin)."""
        hit = torch.rand_like(x) < self.salt_pepper
        coin = (torch.rand_like(x) < 0.5).to(x.dtype)
        return torch.where(hit, coin, x)

    def noisy(self, value: torch.Tensor, level: int) -> torch.Tensor:
        if self.hidden_noise == 0 or (level == 1 and self.noiseless_first):
            return value
        return value + self.hidden_noise * torch.randn_like(value)

    def hidden_update(self, level: int, states: list[torch.Tensor]) -> torch.Tensor:
        """h_level from the layer below and (unless it is the top) the layer above, noisy before and after tanh."""
        total = states[level - 1] @ self.weights[level - 1] + self.biases[level]  # (B, H)
        if level < self.layers:
            total = total + states[level + 1] @ self.weights[level].T  # (B, H) from the layer above
        return self.noisy(torch.tanh(self.noisy(total, level)), level)

    def step(self, x_in: torch.Tensor, hiddens: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One chain step from the (already corrupted) visible input (B, V) and the hidden states: the visible
        logits (B, V) of x_hat and the new hidden states."""
        states = [x_in, *hiddens]
        for level in range(1, self.layers + 1, 2):  # odd layers see the previous even layers
            states[level] = self.hidden_update(level, states)
        logits = states[1] @ self.weights[0].T + self.biases[0]  # (B, V)
        for level in range(2, self.layers + 1, 2):  # even layers see the new odd layers
            states[level] = self.hidden_update(level, states)
        return logits, states[1:]


def build(config: Any) -> GSNNet:
    return GSNNet(visible=config.image_size ** 2, hidden=config.hidden, layers=config.layers,
                  salt_pepper=config.salt_pepper, hidden_noise=config.hidden_noise,
                  noiseless_first=config.noiseless_first)


def training_images(data: str | None, config: Any) -> Any:
    return data_split(data, "train", config.image_size, 1)


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    images = training_images(data, config)
    config.training_data = data or EMBEDDED  # what `gencli evaluate` scores when --data is not given
    return Prepared(config, ImageBatches(images), images.description + ", grey levels in [0, 1]")


def walkback_losses(model: GSNNet, clean: torch.Tensor, walkbacks: int) -> list[torch.Tensor]:
    """Reconstruction cross-entropy (nats per image) of each of ``walkbacks`` chain steps from ``clean`` (B, V)."""
    if walkbacks < 1:
        raise UsageError("--walkbacks must be at least 1")
    x, hiddens, losses = clean, model.initial_hiddens(clean.shape[0]), []
    for _ in range(walkbacks):
        logits, hiddens = model.step(model.corrupt(x), hiddens)
        losses.append(F.binary_cross_entropy_with_logits(logits, clean, reduction="sum") / clean.shape[0])
        x = torch.bernoulli(torch.sigmoid(logits.detach()))  # the chain's own sample: no gradient through it
    return losses


def loss(model: GSNNet, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    clean = batch["pixels"].flatten(1).float() / 255.0  # (B, V) grey levels, the targets of every step
    model.initialise_visible_bias(clean)
    losses = walkback_losses(model, clean, options.walkbacks)
    total = torch.stack(losses).mean()
    return total, {"first_step_nats": float(losses[0].detach()), "last_step_nats": float(losses[-1].detach())}
