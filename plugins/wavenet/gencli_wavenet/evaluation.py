"""Held-out figures for a WaveNet: bits per sample beside the held-out histogram's entropy, and the measured
real-time factor of the sampler the device would use."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gencli.errors import UsageError
from gencli.plugin import EvalRequest
from gencli_wavenet import audio
from gencli_wavenet.arch import CLASSES, SILENCE
from gencli_wavenet.model import WaveNetModel
from gencli_wavenet.sampling import generate, pick_sampler


def histogram_entropy_bits(classes: np.ndarray) -> float:
    counts = np.bincount(classes, minlength=CLASSES).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


@torch.inference_mode()
def evaluate(model: WaveNetModel, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    """Held-out NLL (bits/sample) with the training audio before each held-out tail as context only, next to
    the entropy of the held-out mu-law histogram, and the measured real-time factor of sampling."""
    corpus = audio.load(request.data, config.sample_rate, known_speakers=config.speakers or None)
    rf = model.receptive_field
    chunk = 4096  # predicted samples per forward pass
    budget = max(1, int(options.max_seconds * config.sample_rate))
    tails = [audio.split(c) for c in corpus.clips]
    total_tail = sum(len(t) for _, t in tails)
    keep = min(1.0, budget / max(1, total_tail))  # score an evenly spread fraction when there is too much
    nats, count, scored = 0.0, 0, []
    for (head, tail), speaker in zip(tails, corpus.speaker_ids):
        context = np.full(rf, SILENCE, dtype=np.int64)
        head_classes = audio.mu_law_encode(head[-rf:])
        context[rf - len(head_classes):] = head_classes
        seq = np.concatenate([context, audio.mu_law_encode(tail)])
        n_chunks = math.ceil(len(tail) / chunk)
        step = max(1, round(1 / keep)) if keep < 1 else 1
        for k in range(0, n_chunks, step):
            start = k * chunk  # predicts tail[start : start + chunk]
            window = torch.from_numpy(seq[start: rf + start + chunk]).to(request.device)[None]
            targets = window[:, rf:]
            logits = model(window[:, :-1], torch.tensor([speaker], device=request.device))
            nats += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
            count += targets.numel()
            scored.append(targets.cpu().numpy().ravel())
    if count == 0:
        raise UsageError("no held-out audio to evaluate")
    bits = nats / count / math.log(2)
    entropy = histogram_entropy_bits(np.concatenate(scored))
    metrics = {"bits_per_sample": bits, "histogram_entropy_bits": entropy,
               "nll_below_entropy_percent": 100.0 * (1 - bits / entropy) if entropy > 0 else 0.0,
               "held_out_samples": float(count)}
    if options.rtf_seconds > 0:
        metrics.update(measure_speed(model, config, options.rtf_seconds, request.device))
    return metrics


def measure_speed(model: WaveNetModel, config: Any, seconds: float, device: Any) -> dict[str, float]:
    sampler = pick_sampler("auto", device)
    steps = max(1, int(seconds * config.sample_rate))
    generate(model, config, sampler, n=1, steps=min(steps, 64), speakers=[0], temperature=1.0, seed=0)  # warm-up
    start = time.perf_counter()
    generate(model, config, sampler, n=1, steps=steps, speakers=[0], temperature=1.0, seed=0)
    wall = time.perf_counter() - start
    return {"real_time_factor": wall / (steps / config.sample_rate), "samples_per_second": steps / wall}
