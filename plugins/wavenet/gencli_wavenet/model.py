"""The WaveNet network (van den Oord et al. 2016, section 2), its training windows and loss (evaluation.py scores it).

Convolutions are "valid" (unpadded) and causal: an input of T samples gives T - receptive_field + 1 outputs, the
output at the last position predicting the next sample. A sequence is taken to be preceded by silence, so no
zero-padded activations ever enter the network (training, evaluation and every sampler agree on this).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gencli.errors import UsageError
from gencli.plugin import Prepared
from gencli_wavenet import audio
from gencli_wavenet.arch import CLASSES, SILENCE, check_config, dilations, receptive_field  # noqa: F401 (shared names)


class ResidualLayer(nn.Module):
    """One dilated layer: z = tanh(W_f * x + V_f h) . sigmoid(W_g * x + V_g h); residual x + 1x1(z); skip 1x1(z)."""

    def __init__(self, *, residual: int, gate: int, skip: int, dilation: int, speakers: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.dilated = nn.Conv1d(residual, 2 * gate, kernel_size=2, dilation=dilation)  # filter and gate halves
        self.speaker = nn.Embedding(speakers, 2 * gate)  # global conditioning V h, h one-hot
        self.residual = nn.Conv1d(gate, residual, kernel_size=1)
        self.skip = nn.Conv1d(gate, skip, kernel_size=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, skip_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, R, T); cond: (B,) speaker ids. The skip path is computed only for the last ``skip_len``
        # positions: earlier ones never reach an output with a full receptive field (saves ~20% of training).
        a = self.dilated(x) + self.speaker_bias(cond)  # (B, 2G, T - d)
        filt, gate = a.chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)  # (B, G, T - d)
        return x[:, :, self.dilation:] + self.residual(z), self.skip(z[:, :, -skip_len:])

    def speaker_bias(self, speaker: torch.Tensor) -> torch.Tensor:
        return self.speaker(speaker)[:, :, None]  # (B, 2G, 1)


class WaveNetModel(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        check_config(config)
        r, g, s = config.residual_channels, config.gate_channels, config.skip_channels
        self.receptive_field = receptive_field(config)
        self.causal = nn.Conv1d(CLASSES, r, kernel_size=2)  # on one-hot mu-law input, applied as a lookup
        self.layers = nn.ModuleList(
            ResidualLayer(residual=r, gate=g, skip=s, dilation=d, speakers=max(1, config.num_speakers))
            for d in dilations(config))
        self.out1 = nn.Conv1d(s, s, kernel_size=1)  # relu -> 1x1 -> relu -> 1x1 -> softmax
        self.out2 = nn.Conv1d(s, CLASSES, kernel_size=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The causal input conv over one-hot x, as two table lookups: (B, T) classes -> (B, R, T - 1)."""
        w = self.causal.weight  # (R, 256, 2): tap 0 sees x[t-1], tap 1 sees x[t]
        h = w[:, :, 0].t()[x[:, :-1]] + w[:, :, 1].t()[x[:, 1:]] + self.causal.bias  # (B, T-1, R)
        return h.transpose(1, 2)

    def head(self, skip: torch.Tensor) -> torch.Tensor:
        return self.out2(F.relu(self.out1(F.relu(skip))))  # (B, 256, T')

    def forward(self, x: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """x: (B, T) mu-law classes, speaker: (B,) ids -> logits (B, 256, T - receptive_field + 1)."""
        logits, _ = self.run(x, speaker, keep_layer_inputs=0)
        return logits

    def run(self, x: torch.Tensor, speaker: torch.Tensor, keep_layer_inputs: int
            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward pass that also returns, for each layer, its last ``dilation`` inputs when asked (to prime
        the Fast-Wavenet queues); with keep_layer_inputs=0 nothing is kept."""
        if x.shape[1] < self.receptive_field:
            raise ValueError(f"need at least {self.receptive_field} samples, got {x.shape[1]}")
        h = self.embed(x)  # (B, R, T-1)
        out_len = x.shape[1] - self.receptive_field + 1
        skip, kept = None, []
        for layer in self.layers:
            if keep_layer_inputs:
                kept.append(h[:, :, -layer.dilation:])  # (B, R, d)
            h, s = layer(h, speaker, out_len)  # s: (B, S, out_len)
            skip = s if skip is None else skip + s
        return self.head(skip), kept


# ---- data ------------------------------------------------------------------------------------------


class Windows:
    """Random windows of (receptive field + window) mu-law samples from the training corpus, with speaker ids."""

    def __init__(self, clips: list[np.ndarray], speaker_ids: list[int], length: int) -> None:
        kept = [(c, s) for c, s in zip(clips, speaker_ids) if len(c) >= length]
        if not kept:
            longest = max((len(c) for c in clips), default=0)
            raise UsageError(f"no training clip is long enough for one window of {length:,} samples "
                             f"(longest: {longest:,}); use a smaller --window or longer recordings")
        self.length = length
        self.classes = torch.from_numpy(np.concatenate([audio.mu_law_encode(c) for c, _ in kept]).astype(np.uint8))
        starts = np.cumsum([0] + [len(c) for c, _ in kept[:-1]])
        counts = np.array([len(c) - length + 1 for c, _ in kept])
        self.first = torch.from_numpy(starts)  # where each clip begins in ``classes``
        self.cum = torch.from_numpy(np.cumsum(counts))  # valid window starts, cumulative
        self.speaker = torch.tensor([s for _, s in kept])

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, int(self.cum[-1]), (batch_size,), generator=generator)  # uniform over windows
        clip = torch.searchsorted(self.cum, index, right=True)
        offset = index - torch.cat([torch.zeros(1, dtype=torch.long), self.cum[:-1]])[clip]
        positions = (self.first[clip] + offset)[:, None] + torch.arange(self.length)  # (B, W)
        return self.classes[positions].long(), self.speaker[clip]


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    if options.window < 1:
        raise UsageError("--window must be at least 1")
    corpus = audio.load(data, config.sample_rate)
    if config.speakers and config.speakers != corpus.speakers:
        raise UsageError(f"the data's speakers {corpus.speakers[:5]} differ from the config's {config.speakers[:5]}")
    if config.num_speakers == 0:
        config.num_speakers = len(corpus.speakers)
    elif config.num_speakers < len(corpus.speakers):
        raise UsageError(f"--num-speakers {config.num_speakers} but the data has {len(corpus.speakers)} speaker "
                         "folders")
    config.speakers = list(corpus.speakers)
    train = [audio.split(c)[0] for c in corpus.clips]
    windows = Windows(train, corpus.speaker_ids, receptive_field(config) + options.window)
    return Prepared(config, windows, corpus.description)


def loss(model: WaveNetModel, batch: tuple[torch.Tensor, torch.Tensor], options: Any
         ) -> tuple[torch.Tensor, dict[str, float]]:
    x, speaker = batch  # (B, W), (B,)
    logits = model(x[:, :-1], speaker)  # (B, 256, N) predicting x[:, RF:]
    targets = x[:, model.receptive_field:]
    nats = F.cross_entropy(logits.float(), targets)
    return nats, {"bits_per_sample": float(nats.detach()) / math.log(2)}


# ---- evaluation ------------------------------------------------------------------------------------
