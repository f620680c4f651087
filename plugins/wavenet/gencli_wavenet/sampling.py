"""Generation: the naive sampler, the cached "Fast Wavenet" sampler (Paine et al. 2016) and the dispatcher to
the compiled one in ``fused.py`` (CPU) and the CUDA-graph one in ``graphed.py`` (GPU).

All samplers continue a prefix (by default one receptive field of silence) and draw each sample by inverting the
CDF of softmax(logits / temperature) at a uniform number from one numpy stream (``uniforms``), so given the same
seed they produce the same samples: the tests compare them step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gencli.errors import UsageError
from gencli.plugin import Audio, SampleRequest
from gencli_wavenet import arch, audio
from gencli_wavenet.arch import CHUNK, MAX_SECONDS, SAMPLERS, speaker_ids, uniforms  # noqa: F401 (shared names)
from gencli_wavenet.model import WaveNetModel


def pick_sampler(name: str, device: Any) -> str:
    if name not in SAMPLERS:
        raise UsageError(f"--sampler {name}: choose one of {', '.join(SAMPLERS)}")
    if name == "auto":
        return "fused" if torch.device(device).type == "cpu" else "graph"
    if name == "fused" and torch.device(device).type != "cpu":
        raise UsageError("--sampler fused runs on the CPU only; use --device cpu or --sampler cached")
    return name


def sample(model: WaveNetModel, config: Any, options: Any, request: SampleRequest) -> Audio:
    arch.check_sample_options(options)
    sampler = pick_sampler(options.sampler, request.device)
    speakers = speaker_ids(config, options.speaker, request.n)
    steps = arch.steps_of(config, options)
    classes = generate(model, config, sampler, n=request.n, steps=steps, speakers=speakers,
                       temperature=options.temperature, seed=request.seed,
                       progress=lambda done, total: request.progress(done, total,
                                                                     realtime_rate=config.sample_rate))
    return Audio(audio.mu_law_decode(classes), config.sample_rate)


def silence_prefix(model: WaveNetModel, n: int) -> np.ndarray:
    return np.full((n, model.receptive_field + 1), arch.SILENCE, dtype=np.int64)  # priming needs RF + 1


def generate(model: WaveNetModel, config: Any, sampler: str, *, n: int, steps: int, speakers: list[int],
             temperature: float, seed: int, prefix: np.ndarray | None = None,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n, steps) int mu-law classes continuing ``prefix`` (n, P > receptive field; default silence).
    ``progress(done, total)`` is called after each block of CHUNK steps."""
    prefix = silence_prefix(model, n) if prefix is None else prefix
    draws = uniforms(seed, n, steps)
    if sampler == "fused":
        from gencli_wavenet.fused import FusedSampler

        weights = {name: t.detach().float().cpu().numpy() for name, t in model.state_dict().items()}
        # A constant prefix (silence) is primed in numpy, as the torch-free path does, so both give the same clip.
        kept = None if np.all(prefix == prefix[:, :1]) else [
            k.float().cpu().numpy() for k in prime(model, prefix, torch.tensor(speakers, device=model_device(model)))]
        return FusedSampler(weights, config, speakers).generate(prefix, draws, steps, temperature, progress, kept)
    device = model_device(model)
    spk = torch.tensor(speakers, device=device)
    if sampler == "graph":
        from gencli_wavenet.graphed import generate_graphed

        with torch.inference_mode():
            return generate_graphed(model, prefix, spk, draws, steps, temperature, progress)
    step = NaiveStepper(model, prefix, spk) if sampler == "naive" else CachedStepper(model, prefix, spk)
    out = np.empty((n, steps), dtype=np.int64)
    t = 0
    with torch.inference_mode():
        for block in draws:
            for u in torch.from_numpy(block).to(device):
                chosen = draw(step.logits, temperature, u)
                out[:, t] = chosen.cpu().numpy()
                step.push(chosen)
                t += 1
            if progress is not None:
                progress(t, steps)
    return out


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
