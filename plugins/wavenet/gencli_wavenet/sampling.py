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
from gencli_wavenet.steps import CachedStepper, NaiveStepper, draw, model_device, prime


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
             progress: Callable[[int, int], None] | None = None,
             capture_block: Callable[[Any], Callable[[], None]] | None = None) -> np.ndarray:
    """(n, steps) int mu-law classes continuing ``prefix`` (n, P > receptive field; default silence).
    ``progress(done, total)`` is called after each block of CHUNK steps. ``capture_block``: see
    ``graphed.generate_graphed`` (tests only)."""
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
            out = generate_graphed(model, prefix, spk, draws, steps, temperature, progress, capture_block)
        if out is not None:
            return out
        draws = uniforms(seed, n, steps)  # the graph failed its self-check (and said so): the cached sampler
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
