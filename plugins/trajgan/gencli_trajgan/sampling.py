"""Sampling: whole plays, or the continuation of a given play's first frames (--given)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gencli import trajectories
from gencli.errors import UsageError
from gencli.plugin import SampleRequest, Trajectories
from gencli_trajgan.data import to_feet, to_units
from gencli_trajgan.model import TrajGAN


def court_of(config: Any) -> tuple[float, float]:
    return (float(config.court_length), float(config.court_width))


def generate_feet(model: TrajGAN, config: Any, n: int, frames: int, generator: torch.Generator,
                  temperature: float = 1.0, given: np.ndarray | None = None) -> np.ndarray:
    """(n, frames, A, 2) plays in feet; ``given`` (G, A, 2) feet fixes the first G frames of each."""
    device = model.generator.first_mean.device
    fixed = None
    if given is not None:
        fixed = torch.tensor(to_units(given, court_of(config)), dtype=torch.float32, device=device)
        fixed = fixed.expand(n, *fixed.shape)  # (n, G, A, 2)
    units = model.generator.rollout(n, frames, generator=generator, temperature=temperature, given=fixed).units
    feet = to_feet(units.float().cpu().numpy().astype(np.float64), court_of(config))
    if given is not None:
        feet[:, : len(given)] = given  # exactly as read, not round-tripped through court units
    return feet


def read_given(options: Any, config: Any, frames: int) -> np.ndarray:
    """The first --given-frames frames (G, A, 2) of the --given CSV's first sequence, agents in the model's order."""
    plays = trajectories.read_csv(options.given, flag="--given")
    missing = [role for role in config.roles if role not in plays.agents]
    if missing or len(plays.agents) != len(config.roles):
        raise UsageError(f"--given {options.given}: its agents are {', '.join(plays.agents)}; this model moves "
                         f"{', '.join(config.roles)}")
    order = [plays.agents.index(role) for role in config.roles]
    trajectories.check_inside(plays, court_of(config), options.given, flag="--given")
    track = trajectories.resample(plays.sequences[0][:, order], plays.rate or config.rate, config.rate)
    if len(track) < options.given_frames:
        raise UsageError(f"--given {options.given}: its first sequence has {len(track)} frames at {config.rate:g} "
                         f"Hz, fewer than --given-frames {options.given_frames}")
    if options.given_frames >= frames:
        raise UsageError(f"--given-frames {options.given_frames} leaves nothing to generate in a {frames}-frame "
                         "play; give fewer, or more --frames")
    return track[: options.given_frames]


def sample(model: TrajGAN, config: Any, options: Any, request: SampleRequest) -> Trajectories:
    frames = options.frames or config.frames
    if frames < 2:
        raise UsageError("--frames must be at least 2 (or 0 for the model's window)")
    given = read_given(options, config, frames) if options.given is not None else None
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    feet = generate_feet(model, config, request.n, frames, generator, options.temperature, given)
    return Trajectories(feet, list(config.roles), court_of(config), float(config.rate))
