"""Graves (2013) section 4 and 5: an LSTM stack whose outputs parameterise a mixture density for the next pen
offset, and, for the synthesis network, a soft attention window over the characters of the text.

Names follow the paper: the window has K Gaussians with importance alpha, width beta and location kappa
(eq. 46-51); phi(t, u) is the weight of character u at step t and w_t the window vector it reads (eq. 47).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class HandwritingNet(nn.Module):
    """``arch`` "prediction": x_t -> LSTM^L -> mixture (section 4). "synthesis": the first layer also reads the
    previous window vector, and the window it computes feeds every layer above and the output (section 5.1).
    Every layer also sees the input (skip connections) and the output layer sees every layer, as in the paper.
    """

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.synthesis = config.arch == "synthesis"
        self.alphabet_size = max(1, len(config.alphabet))
        self.mixtures, self.window_gaussians = config.mixtures, config.window_gaussians
        hidden, window = config.hidden_size, (self.alphabet_size if self.synthesis else 0)
        if self.synthesis:
            self.cell1 = nn.LSTMCell(3 + window, hidden)  # stepped by hand: the window feeds back into it
            self.window = nn.Linear(hidden, 3 * config.window_gaussians)
            with torch.no_grad():
                # exp(-2.3) ~ 0.1 characters per step at the start (about the pen points per letter in the data):
                # the window moves from the outset instead of waiting for the gradient to push it.
                self.window.bias[2 * config.window_gaussians:].fill_(-2.3)
        else:
            self.layer1 = nn.LSTM(3, hidden, batch_first=True)
        self.upper = nn.ModuleList(nn.LSTM(3 + hidden + window, hidden, batch_first=True)
                                   for _ in range(config.num_layers - 1))
        self.head = nn.Linear(config.num_layers * hidden, 1 + 6 * config.mixtures)

    def forward(self, points: torch.Tensor, chars: torch.Tensor | None = None, char_mask: torch.Tensor | None = None,
                state: dict[str, Any] | None = None, derivative_clip: float = 0.0
                ) -> tuple[torch.Tensor, dict[str, Any], dict[str, torch.Tensor]]:
        """points (B, T, 3) inputs (the previous offsets) -> y_hat (B, T, 1 + 6M), the new state, and the
        window's trace {"kappa": (B, T, K), "alpha", "beta"} (empty for the prediction network).

        ``derivative_clip`` > 0 clips the derivatives reaching the mixture outputs to +-100 and those reaching
        each LSTM layer's outputs to +-10 (Graves, section 4.2), scaled by ``derivative_clip`` (1 / the number
        of points the loss averages over, so the bounds apply to the summed loss as in the paper).
        """
        state = state if state is not None else {}
        trace: dict[str, torch.Tensor] = {}
        if self.synthesis:
            assert chars is not None and char_mask is not None, "the synthesis network needs the text"
            h1, window, trace, state1 = self._attend(points, chars, char_mask, state.get("first"))
            below = [h1]
            extra = [window]
        else:
            h1, state1 = self.layer1(points, state.get("first"))
            below, extra = [h1], []
        upper_states = []
        for index, lstm in enumerate(self.upper):
            previous = state.get("upper", [None] * len(self.upper))[index]
            h, layer_state = lstm(torch.cat([points, below[-1], *extra], dim=-1), previous)  # (B, T, H)
            below.append(h)
            upper_states.append(layer_state)
        if derivative_clip > 0 and torch.is_grad_enabled():
            for h in below:
                h.register_hook(lambda grad: grad.clamp(-10 * derivative_clip, 10 * derivative_clip))
        y_hat = self.head(torch.cat(below, dim=-1))  # (B, T, 1 + 6M)
        if derivative_clip > 0 and torch.is_grad_enabled():
            y_hat.register_hook(lambda grad: grad.clamp(-100 * derivative_clip, 100 * derivative_clip))
        return y_hat, {"first": state1, "upper": upper_states}, trace

    def _attend(self, points: torch.Tensor, chars: torch.Tensor, char_mask: torch.Tensor, state: Any
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], Any]:
        """The first layer and the window, one step at a time (w_{t-1} is an input of step t)."""
        batch, steps, _ = points.shape
        onehot = F.one_hot(chars, self.alphabet_size).to(points.dtype) * char_mask[..., None]  # (B, U, A)
        positions = torch.arange(chars.shape[1], device=points.device, dtype=points.dtype)  # u = 0 .. U-1
        if state is None:
            zeros = points.new_zeros(batch, self.cell1.hidden_size)
            state = ((zeros, zeros), points.new_zeros(batch, self.window_gaussians),
                     points.new_zeros(batch, self.alphabet_size))
        (h, c), kappa, window = state
        hs, windows, kappas, alphas, betas = [], [], [], [], []
        for t in range(steps):
            h, c = self.cell1(torch.cat([points[:, t], window], dim=-1), (h, c))  # (B, H)
            alpha_hat, beta_hat, kappa_hat = self.window(h).chunk(3, dim=-1)  # each (B, K)
            alpha, beta = alpha_hat.exp(), beta_hat.exp()
            kappa = kappa + kappa_hat.exp()  # eq. 51: the window only moves forward
            phi = (alpha[..., None] * torch.exp(-beta[..., None] * (kappa[..., None] - positions) ** 2)).sum(1)
            window = torch.bmm(phi[:, None], onehot)[:, 0]  # (B, A): eq. 47
            hs.append(h), windows.append(window), kappas.append(kappa), alphas.append(alpha), betas.append(beta)
        trace = {"kappa": torch.stack(kappas, 1), "alpha": torch.stack(alphas, 1), "beta": torch.stack(betas, 1)}
        return torch.stack(hs, 1), torch.stack(windows, 1), trace, ((h, c), kappa, window)


# ---- the mixture density output (eq. 18-25) -----------------------------------------------------------


def split_mixture(y_hat: torch.Tensor, mixtures: int) -> dict[str, torch.Tensor]:
    """y_hat (..., 1 + 6M) -> the raw mixture parameters, each (..., M) (``pen_logit`` (...,))."""
    pen_logit, rest = y_hat[..., 0], y_hat[..., 1:]
    pi_logit, mu_x, mu_y, log_sigma_x, log_sigma_y, rho_hat = rest.split(mixtures, dim=-1)
    return {"pen_logit": pen_logit, "pi_logit": pi_logit, "mu_x": mu_x, "mu_y": mu_y,
            "log_sigma_x": log_sigma_x, "log_sigma_y": log_sigma_y, "rho": torch.tanh(rho_hat)}


def point_nll(y_hat: torch.Tensor, target: torch.Tensor, mixtures: int) -> torch.Tensor:
    """-log Pr(target | y_hat) per point (eq. 26), in nats: (B, T)."""
    p = split_mixture(y_hat.float(), mixtures)
    x, y, pen = target[..., 0:1], target[..., 1:2], target[..., 2]
    zx = (x - p["mu_x"]) * torch.exp(-p["log_sigma_x"])
    zy = (y - p["mu_y"]) * torch.exp(-p["log_sigma_y"])
    one_minus_rho2 = (1 - p["rho"] ** 2).clamp_min(1e-6)
    z = zx ** 2 + zy ** 2 - 2 * p["rho"] * zx * zy
    log_density = (-z / (2 * one_minus_rho2) - LOG_2PI - p["log_sigma_x"] - p["log_sigma_y"]
                   - 0.5 * torch.log(one_minus_rho2))  # (B, T, M)
    log_mixture = torch.logsumexp(F.log_softmax(p["pi_logit"], dim=-1) + log_density, dim=-1)
    pen_nll = F.binary_cross_entropy_with_logits(p["pen_logit"], pen, reduction="none")
    return pen_nll - log_mixture


def draw_point(y_hat: torch.Tensor, mixtures: int, bias: float, temperature: float,
               generator: torch.Generator) -> torch.Tensor:
    """One offset per row from y_hat (B, 1 + 6M): (B, 3).

    Graves' probability bias b (section 5.4): mixture weights softmax(pi_hat (1 + b)), widths exp(sigma_hat - b);
    b = 0 samples the model as trained, larger b is steadier and neater. ``temperature`` tau divides the weight
    and pen logits and scales the variances by tau.
    """
    p = split_mixture(y_hat.float(), mixtures)
    weights = F.softmax(p["pi_logit"] * (1 + bias) / temperature, dim=-1)  # (B, M)
    component = torch.multinomial(weights, 1, generator=generator)  # (B, 1)
    pick = lambda name: p[name].gather(1, component)[:, 0]  # noqa: E731  (B,)
    spread = math.sqrt(temperature)
    sigma_x = torch.exp(pick("log_sigma_x") - bias) * spread
    sigma_y = torch.exp(pick("log_sigma_y") - bias) * spread
    rho = pick("rho")
    noise = torch.randn(y_hat.shape[0], 2, generator=generator, device=y_hat.device)
    dx = pick("mu_x") + sigma_x * noise[:, 0]
    dy = pick("mu_y") + sigma_y * (rho * noise[:, 0] + torch.sqrt((1 - rho ** 2).clamp_min(0)) * noise[:, 1])
    pen_up = torch.bernoulli(torch.sigmoid(p["pen_logit"] / temperature), generator=generator)
    return torch.stack([dx, dy, pen_up], dim=-1)
