"""Torch-free pieces shared by the model, the torch samplers and the numpy sample path: the architecture as plain
numbers, the tensors it holds, and the sample options' checks and random stream.

Kept free of torch (and numba) so that `gencli sample wavenet` on the CPU can check the weights and sample
without importing torch at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gencli.errors import UsageError
from gencli_wavenet import audio

CLASSES = audio.MU + 1  # 256-way softmax
SILENCE = int(audio.mu_law_encode(np.zeros(1))[0])  # mu-law class of 0.0 (128)

SAMPLERS = ("auto", "fused", "graph", "cached", "naive")
MAX_SECONDS = 600.0
CHUNK = 4096  # steps per block of uniform draws (and per call into the compiled loop)


def dilations(config: Any) -> list[int]:
    """1, 2, 4 .. 2^(layers_per_stack-1), repeated ``stacks`` times (the paper's schedule)."""
    return [2**i for i in range(config.layers_per_stack)] * config.stacks


def receptive_field(config: Any) -> int:
    """Samples that one output sees: 2 for the causal input conv, plus each dilated layer's dilation."""
    return 2 + sum(dilations(config))


def check_config(config: Any) -> None:
    for name in ("layers_per_stack", "stacks", "residual_channels", "gate_channels", "skip_channels"):
        if getattr(config, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if config.layers_per_stack > 16:
        raise UsageError("--layers-per-stack must be at most 16 (dilation 2^15)")


def tensor_specs(config: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor of ``WaveNetModel(config).state_dict()``: name -> (shape, dtype); a test checks the two agree."""
    check_config(config)
    r, g, s = config.residual_channels, config.gate_channels, config.skip_channels
    specs = {"causal.weight": (r, CLASSES, 2), "causal.bias": (r,)}
    for index, _ in enumerate(dilations(config)):
        layer = f"layers.{index}."
        specs.update({layer + "dilated.weight": (2 * g, r, 2), layer + "dilated.bias": (2 * g,),
                      layer + "speaker.weight": (max(1, config.num_speakers), 2 * g),
                      layer + "residual.weight": (r, g, 1), layer + "residual.bias": (r,),
                      layer + "skip.weight": (s, g, 1), layer + "skip.bias": (s,)})
    specs.update({"out1.weight": (s, s, 1), "out1.bias": (s,), "out2.weight": (CLASSES, s, 1), "out2.bias": (CLASSES,)})
    return {name: (shape, "float32") for name, shape in specs.items()}


# ---- sample options ----------------------------------------------------------------------------------


def check_sample_options(options: Any) -> None:
    if not (0 < options.seconds <= MAX_SECONDS):
        raise UsageError(f"--seconds must be in (0, {MAX_SECONDS:g}], got {options.seconds:g}")
    if not options.temperature > 0:
        raise UsageError("--temperature must be positive")
    if options.sampler not in SAMPLERS:
        raise UsageError(f"--sampler {options.sampler}: choose one of {', '.join(SAMPLERS)}")


def steps_of(config: Any, options: Any) -> int:
    return max(1, int(round(options.seconds * config.sample_rate)))


def speaker_ids(config: Any, speaker: str, n: int) -> list[int]:
    count = max(1, config.num_speakers)
    if not speaker:
        return [i % count for i in range(n)]
    names = list(config.speakers)
    if speaker in names:
        return [names.index(speaker)] * n
    if speaker.isdigit() and int(speaker) < count:
        return [int(speaker)] * n
    known = ", ".join(names) if names else f"ids 0..{count - 1}"
    raise UsageError(f"--speaker {speaker}: unknown speaker (known: {known})")


def uniforms(seed: int, n: int, steps: int) -> Iterator[np.ndarray]:
    """(chunk, n) float64 blocks of U[0, 1) draws; every sampler consumes this same stream."""
    rng = np.random.Generator(np.random.PCG64(seed))
    for start in range(0, steps, CHUNK):
        yield rng.random((min(CHUNK, steps - start), n))


def silence_prefix(config: Any, n: int) -> np.ndarray:
    return np.full((n, receptive_field(config) + 1), SILENCE, dtype=np.int64)  # priming needs RF + 1
