"""The learning-rate schedule and the batch stream: both functions of the step alone.

Why batches are drawn from a generator seeded by (seed, step): the data position is then the step number
itself, so resuming, or splitting a global batch across ranks, needs no data-loader state at all. Why the
learning rate depends on the step alone: ``--steps`` only says where to stop, so ``--resume --steps 400`` on a
run started with ``--steps 200`` is exactly the run started with ``--steps 400``.
"""

from __future__ import annotations

import math
from typing import Any


def batch_generator(seed: int, step: int) -> Any:
    import torch

    # Mix seed and step so neighbouring seeds do not share batch sequences shifted by one.
    return torch.Generator().manual_seed((seed * 0x9E3779B1 + step * 0x85EBCA77 + 1) % (2**63))


def lr_at(step: int, engine: Any) -> float:
    """The learning rate of the update that takes the run from ``step`` to ``step + 1``.

    Linear warm-up over ``warmup_steps``, then a cosine from lr down to lr/10 that ends at ``decay_steps``
    (nanoGPT's shape, with its ``lr_decay_iters``), then lr/10. It never reads ``engine.steps``: a run's
    schedule must not depend on where it stops, or extending a run with --resume would rewrite its past.
    ``decay_steps`` 0 means no decay.
    """
    if engine.warmup_steps and step < engine.warmup_steps:
        return engine.lr * (step + 1) / engine.warmup_steps
    horizon = engine.decay_steps
    if horizon is None:  # a spec built by hand, not by resolve(): its own length is the best guess
        horizon = engine.steps
    if horizon <= 0:
        return engine.lr
    span = max(1, horizon - engine.warmup_steps)
    progress = min(1.0, (step - engine.warmup_steps) / span)
    return engine.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def describe_schedule(engine: Any) -> str:
    horizon = engine.decay_steps if engine.decay_steps is not None else engine.steps
    warm = f"warm-up {engine.warmup_steps} steps, " if engine.warmup_steps else ""
    if horizon <= 0:
        return f"lr {engine.lr:g} ({warm}constant)"
    return f"lr {engine.lr:g} ({warm}cosine to {engine.lr / 10:g} by step {horizon})"
