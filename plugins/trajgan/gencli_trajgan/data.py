"""Training and held-out plays: the built-in simulator (with its macro-goals), or a CSV of tracking rows.

A play is a float array (T, A, 2) in court feet. The model sees court units: each coordinate divided by the
court's size and mapped to [-1, 1].
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gencli import trajectories
from gencli.data.sources import local_path
from gencli.errors import UsageError
from gencli_trajgan import simulator

EMBEDDED = "halfcourt"
TRAIN_PLAYS, HELD_OUT_PLAYS = 8000, 1000
TRAIN_SEED, HELD_OUT_SEED = 2016, 2019  # Zheng et al. 2016; Zhan et al. 2019
HOLDOUT_EVERY = 10  # of a CSV's windows, every tenth is held out


@dataclass
class PlaySet:
    positions: np.ndarray  # (N, T, A, 2) feet
    goals: np.ndarray | None  # (N, T, P) macro-goal indices, None when the data has none
    roles: list[str]
    court: tuple[float, float]
    description: str


def is_embedded(source: str | None) -> bool:
    return source in (None, "", EMBEDDED)


@functools.cache
def simulated(split: str, players: int, frames: int) -> PlaySet:
    n, seed = (TRAIN_PLAYS, TRAIN_SEED) if split == "train" else (HELD_OUT_PLAYS, HELD_OUT_SEED)
    plays = simulator.simulate(n, seed, players=players, frames=frames)
    # The model's goal at frame t is the one that drives the move to frame t + 1 (the simulator records the
    # goal each frame's position was moved by).
    goals = np.concatenate([plays.goals[:, 1:], plays.goals[:, -1:]], axis=1)  # (N, T, P)
    return PlaySet(plays.positions, goals, plays.roles, simulator.COURT,
                   f"{EMBEDDED} (SYNTHETIC: {n:,} simulated half-court plays, {players} players and the ball, "
                   f"{frames} frames at {simulator.RATE:g} Hz, seed {seed})")


def load(source: str | None, config: Any, split: str, data_rate: float = 0.0) -> PlaySet:
    """The ``split`` ("train" or "held-out") of the simulator or of ``source`` (a CSV file)."""
    if is_embedded(source):
        if (config.court_length, config.court_width) != simulator.COURT or config.rate != simulator.RATE:
            raise UsageError(f"the simulator plays on a {simulator.COURT[0]:g} x {simulator.COURT[1]:g} ft half "
                             f"court at {simulator.RATE:g} Hz; --court-length, --court-width and --rate are for "
                             "--data CSV")
        return simulated(split, config.agents, config.frames)
    return csv_split(str(source), config, split, data_rate)


def csv_split(source: str, config: Any, split: str, data_rate: float) -> PlaySet:
    path = str(local_path(source))  # a local file, or hf:org/name/path fetched from a Hub dataset repo
    plays = trajectories.read_csv(path)
    court = (config.court_length, config.court_width)
    trajectories.check_inside(plays, court, path,
                              hint="; give the court's size with --court-length and --court-width")
    rate = data_rate or plays.rate or config.rate
    windows = []
    for index, track in enumerate(plays.sequences):
        resampled = trajectories.resample(track, rate, config.rate)  # (T', A, 2)
        if len(resampled) < config.frames:
            raise UsageError(f"--data {path}: sequence {index + 1} lasts {len(resampled)} frames at "
                             f"{config.rate:g} Hz ({len(track)} at {rate:g} Hz), shorter than the "
                             f"{config.frames}-frame window; give --frames {len(resampled)} or less")
        step = max(1, config.frames // 2)  # windows overlap by half
        windows += [resampled[s : s + config.frames] for s in range(0, len(resampled) - config.frames + 1, step)]
    if len(windows) < 2:
        raise UsageError(f"--data {path}: {len(windows)} window of {config.frames} frames; training and "
                         "evaluation need at least 2 (a shorter --frames makes more)")
    held = [i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 for i in range(len(windows))]
    if not any(held):
        held[-1] = True
    chosen = [w for w, h in zip(windows, held) if h == (split != "train")]
    return PlaySet(np.stack(chosen), None, plays.agents, court,
                   f"{path} ({len(plays.sequences)} sequences, {len(windows)} windows of {config.frames} frames at "
                   f"{config.rate:g} Hz, {len(plays.agents)} agents)")


def finalise(config: Any, plays: PlaySet) -> Any:
    """The config with what the data decides: roles, players, goals, and the RMS move per frame."""
    units = to_units(plays.positions, plays.court)  # (N, T, A, 2)
    step = float(np.sqrt(np.mean(np.diff(units, axis=1) ** 2)))
    if config.macro_goals == "on" and plays.goals is None:
        raise UsageError("--data CSV carries no macro-goals; train with --macro-goals off")
    players = sum(role != trajectories.BALL for role in plays.roles)
    return dataclasses.replace(config, roles=list(plays.roles), agents=players,
                               goal_count=len(simulator.GOAL_NAMES) if config.macro_goals == "on" else 0,
                               step_scale=config.step_scale or step)


def to_units(feet: np.ndarray, court: tuple[float, float]) -> np.ndarray:
    return feet / np.asarray(court) * 2.0 - 1.0


def to_feet(units: np.ndarray, court: tuple[float, float]) -> np.ndarray:
    return (units + 1.0) / 2.0 * np.asarray(court)


class PlayBatches:
    """The engine's TrainData: (positions in court units (B, T, A, 2), goals (B, T, P) or (B, 0, 0))."""

    def __init__(self, plays: PlaySet, with_goals: bool) -> None:
        self.units = torch.tensor(to_units(plays.positions, plays.court), dtype=torch.float32)
        n = len(self.units)
        self.goals = (torch.tensor(plays.goals, dtype=torch.long) if with_goals
                      else torch.zeros(n, 0, 0, dtype=torch.long))

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, len(self.units), (batch_size,), generator=generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5  # mirror left/right: the court is symmetric
        units, goals = self.units[rows].clone(), self.goals[rows].clone()
        units[flip, ..., 1] = -units[flip, ..., 1]
        if goals.numel():
            goals[flip] = MIRROR_GOAL[goals[flip]]
        return units, goals


# Each simulator spot's mirror image across the court's long axis (left corner <-> right corner, ...).
MIRROR_GOAL = torch.tensor([simulator.GOAL_NAMES.index(name.replace("left", "@").replace("right", "left")
                                                       .replace("@", "right"))
                            for name in simulator.GOAL_NAMES])
