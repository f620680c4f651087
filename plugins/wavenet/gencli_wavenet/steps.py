"""The step functions every torch sampler shares, so the naive, cached and graph samplers agree to the last bit:
priming from a prefix, one dilated layer at one time step, the output stack, the inverse-CDF draw, and the
naive and cached steppers built from them.
(fused.py is the same arithmetic, compiled with numba.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gencli_wavenet.model import WaveNetModel


def model_device(model: WaveNetModel) -> torch.device:
    return next(model.parameters()).device


def draw(logits: torch.Tensor, temperature: float, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw from softmax(logits / T) in float64: the first class whose cumulative mass exceeds u."""
    scaled = (logits.double() - logits.double().max(dim=1, keepdim=True).values) / temperature
    cdf = torch.cumsum(torch.exp(scaled), dim=1)  # (N, 256)
    index = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0]
    return index.clamp_(max=cdf.shape[1] - 1)


def prime(model: WaveNetModel, prefix: np.ndarray, speaker: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's inputs over the last ``dilation`` steps before the prefix's last sample: (N, R, d) per layer.

    A constant prefix (the default: silence) makes every layer's input constant in time, so its state is one
    cheap pass of the recurrence with past == current, instead of a full forward over the receptive field.
    """
    x = torch.from_numpy(np.ascontiguousarray(prefix, dtype=np.int64)).to(speaker.device)
    with torch.inference_mode():
        if not np.all(prefix == prefix[:, :1]):
            return model.run(x[:, :-1], speaker, keep_layer_inputs=1)[1]
        w = model.causal.weight
        h = w[:, x[:, 0], 0].t() + w[:, x[:, 0], 1].t() + model.causal.bias  # (N, R)
        kept = []
        for layer in model.layers:
            kept.append(h[:, :, None].expand(-1, -1, layer.dilation).clone())
            a = h @ (layer.dilated.weight[:, :, 0] + layer.dilated.weight[:, :, 1]).t() + layer.dilated.bias
            filt, gate = (a + layer.speaker(speaker)).chunk(2, dim=1)
            h = h + (torch.tanh(filt) * torch.sigmoid(gate)) @ layer.residual.weight[:, :, 0].t() + layer.residual.bias
        return kept


def layer_step(layer: Any, past: torch.Tensor, h: torch.Tensor, cond: torch.Tensor,
               skip: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """One dilated layer at one time step, from its input ``dilation`` steps back (``past``) and now (``h``),
    both (N, R): (the next layer's input, the skip sum with this layer's part added). Shared by the cached and
    the graph samplers, so they agree to the last bit."""
    w = layer.dilated.weight  # (2G, R, 2)
    a = past @ w[:, :, 0].t() + h @ w[:, :, 1].t() + cond  # (N, 2G)
    filt, gate = a.chunk(2, dim=1)
    z = torch.tanh(filt) * torch.sigmoid(gate)  # (N, G)
    skip = skip + z @ layer.skip.weight[:, :, 0].t() + layer.skip.bias  # (N, S)
    return h + z @ layer.residual.weight[:, :, 0].t() + layer.residual.bias, skip


def output_logits(model: WaveNetModel, skip: torch.Tensor) -> torch.Tensor:
    """relu -> 1x1 -> relu -> 1x1 on the summed skips (N, S): the next sample's logits (N, 256)."""
    out = torch.relu(torch.relu(skip) @ model.out1.weight[:, :, 0].t() + model.out1.bias)
    return (out @ model.out2.weight[:, :, 0].t() + model.out2.bias).float()


class NaiveStepper:
    """Recomputes the whole receptive field for every sample (what the paper's authors did): O(RF x layers)."""

    def __init__(self, model: WaveNetModel, prefix: np.ndarray, speaker: torch.Tensor) -> None:
        self.model, self.speaker = model, speaker
        self.window = torch.from_numpy(prefix[:, -model.receptive_field:]).to(speaker.device)
        self.logits = self._logits()

    def _logits(self) -> torch.Tensor:
        return self.model(self.window, self.speaker)[:, :, -1].float()  # (N, 256)

    def push(self, chosen: torch.Tensor) -> None:
        self.window = torch.cat([self.window[:, 1:], chosen[:, None]], dim=1)
        self.logits = self._logits()


class CachedStepper:
    """Fast Wavenet: each dilated layer keeps a queue of its last ``dilation`` inputs, so a step costs O(layers).

    Primed by one parallel pass over the prefix; ``logits`` always predict the sample after the last one fed.
    """

    def __init__(self, model: WaveNetModel, prefix: np.ndarray, speaker: torch.Tensor) -> None:
        self.model = model
        x = torch.from_numpy(prefix).to(speaker.device)
        kept = prime(model, prefix, speaker)  # state up to the second-to-last sample
        self.queues = [k.clone() for k in kept]  # layer l: (N, R, d), slot s mod d holds the input d steps back
        self.step = 0
        self.prev = x[:, -2]
        w = model.causal.weight
        self.tap_prev, self.tap_cur = w[:, :, 0].t(), w[:, :, 1].t()  # (256, R)
        self.cond = [layer.speaker(speaker) + layer.dilated.bias for layer in model.layers]  # (N, 2G)
        self.logits = self._advance(x[:, -1])

    def _advance(self, cur: torch.Tensor) -> torch.Tensor:
        model = self.model
        h = self.tap_prev[self.prev] + self.tap_cur[cur] + model.causal.bias  # (N, R)
        skip = 0
        for layer, queue, cond in zip(model.layers, self.queues, self.cond):
            slot = self.step % layer.dilation
            past = queue[:, :, slot]  # (N, R) input at t - d: a view, so overwritten only after its use
            h_next, skip = layer_step(layer, past, h, cond, skip)
            queue[:, :, slot] = h
            h = h_next
        self.prev = cur
        self.step += 1
        return output_logits(model, skip)

    def push(self, chosen: torch.Tensor) -> None:
        self.logits = self._advance(chosen)
