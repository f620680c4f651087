"""`gencli evaluate trajgan`: Zhan et al.'s movement statistics and a two-sample test, for the model and for a
random-walk baseline measured in the same run.

Statistics over the players (the ball is left out: its passes are a different kind of motion), in feet:
average speed, distance per player per play, the share of player-frames outside the court, and the mean
acceleration. A play set close to the held-out plays on all of them moves like them.

Two-sample test: a small GRU classifier learns to tell real plays (training split) from generated ones and is
scored on held-out real plays against fresh generated ones; accuracy 0.5 means it cannot tell them apart.
The random walk starts from real first frames and takes steps whose lengths are drawn from the real plays'
step lengths (per agent), in uniformly random directions: the same step-size distribution, no intent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gencli.errors import UsageError
from gencli.plugin import EvalRequest
from gencli_trajgan.data import PlaySet, load, to_units
from gencli_trajgan.model import TrajGAN
from gencli_trajgan.sampling import court_of, generate_feet


def movement_statistics(feet: np.ndarray, roles: list[str], court: tuple[float, float], rate: float
                        ) -> dict[str, float]:
    """(N, T, A, 2) plays -> average speed (ft/s), distance per player (ft), out-of-bounds share, acceleration."""
    players = [i for i, role in enumerate(roles) if role != "ball"]
    track = feet[:, :, players]  # (N, T, P, 2)
    steps = np.linalg.norm(np.diff(track, axis=1), axis=-1)  # (N, T-1, P)
    velocity = np.diff(track, axis=1) * rate  # (N, T-1, P, 2)
    acceleration = np.linalg.norm(np.diff(velocity, axis=1), axis=-1) * rate  # (N, T-2, P)
    outside = ((track < 0) | (track > np.asarray(court))).any(-1)  # (N, T, P)
    return {"speed_ft_s": float(steps.mean() * rate), "distance_ft": float(steps.sum(1).mean()),
            "out_of_bounds": float(outside.mean()),
            "acceleration_ft_s2": float(acceleration.mean()) if acceleration.size else 0.0}


def random_walk(real: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Plays (N, T, A, 2) from the first frames of ``real``, each agent stepping by a length drawn from its own
    real step lengths in a uniformly random direction."""
    lengths = np.linalg.norm(np.diff(real, axis=1), axis=-1)  # (N, T-1, A)
    n, t, a, _ = real.shape
    pool = lengths.transpose(2, 0, 1).reshape(a, -1)  # (A, N*(T-1)) each agent's step lengths
    drawn = np.stack([rng.choice(pool[k], size=(n, t - 1)) for k in range(a)], axis=-1)  # (N, T-1, A)
    angle = rng.uniform(0, 2 * np.pi, drawn.shape)
    steps = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * drawn[..., None]  # (N, T-1, A, 2)
    return np.concatenate([real[:, :1], real[:, :1] + np.cumsum(steps, axis=1)], axis=1)


class PlayClassifier(nn.Module):
    """Real (1) or generated (0), from a play's positions and moves in court units."""

    def __init__(self, agents: int, hidden: int = 32) -> None:
        super().__init__()
        self.gru = nn.GRU(agents * 4, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        flat = units.flatten(2)  # (B, T, A*2)
        moves = torch.cat([torch.zeros_like(flat[:, :1]), flat[:, 1:] - flat[:, :-1]], dim=1) * 20.0
        _, last = self.gru(torch.cat([flat, moves], dim=-1))  # (1, B, H)
        return self.head(last[0])[:, 0]


def two_sample_accuracy(train_real: np.ndarray, train_fake: np.ndarray, test_real: np.ndarray,
                        test_fake: np.ndarray, court: tuple[float, float], steps: int, seed: int) -> float:
    """Held-out accuracy of a classifier trained to tell ``train_real`` from ``train_fake`` (feet, (N, T, A, 2))."""
    with torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        as_tensor = lambda feet: torch.tensor(to_units(feet, court), dtype=torch.float32)  # noqa: E731
        x = torch.cat([as_tensor(train_real), as_tensor(train_fake)])
        y = torch.cat([torch.ones(len(train_real)), torch.zeros(len(train_fake))])
        classifier = PlayClassifier(train_real.shape[2])
        optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            rows = torch.randint(0, len(x), (64,), generator=generator)
            loss = F.binary_cross_entropy_with_logits(classifier(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            real_right = (classifier(as_tensor(test_real)) > 0).float().sum()
            fake_right = (classifier(as_tensor(test_fake)) <= 0).float().sum()
    return float((real_right + fake_right) / (len(test_real) + len(test_fake)))


def evaluate(model: TrajGAN, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    held = _matching(load(request.data, config, "held-out"), config)
    train = _matching(load(request.data, config, "train"), config)
    court, rate, roles = court_of(config), float(config.rate), list(config.roles)
    n = min(options.samples, len(held.positions))
    frames = held.positions.shape[1]
    real_test = held.positions[:n]  # (n, T, A, 2)
    request.describe_data(f"{held.description}: the held-out split, {n:,} plays (and {n:,} training plays for the "
                          "classifier)")
    pick = np.random.default_rng(request.seed).choice(len(train.positions), size=n, replace=len(train.positions) < n)
    real_train = train.positions[pick]
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    fake_train = generate_feet(model, config, n, frames, generator)
    request.progress(1, 4)
    fake_test = generate_feet(model, config, n, frames, generator)
    rng = np.random.default_rng(request.seed + 1)
    walk_train, walk_test = random_walk(real_train, rng), random_walk(real_test, rng)

    metrics: dict[str, float] = {"plays": n, "frames": frames}
    figures = {name: movement_statistics(feet, roles, court, rate)
               for name, feet in (("held_out", real_test), ("model", fake_test), ("random_walk", walk_test))}
    for name, stats in figures.items():
        metrics.update({f"{name}_{key}": value for key, value in stats.items()})
    for name in ("model", "random_walk"):
        for key in ("speed_ft_s", "distance_ft"):
            metrics[f"{name}_{key.split('_')[0]}_ratio"] = figures[name][key] / max(figures["held_out"][key], 1e-9)
    request.progress(2, 4)
    metrics["model_classifier_accuracy"] = two_sample_accuracy(real_train, fake_train, real_test, fake_test, court,
                                                               options.classifier_steps, request.seed)
    request.progress(3, 4)
    metrics["random_walk_classifier_accuracy"] = two_sample_accuracy(real_train, walk_train, real_test, walk_test,
                                                                     court, options.classifier_steps, request.seed)
    request.progress(4, 4)
    return metrics


def _matching(plays: PlaySet, config: Any) -> PlaySet:
    if list(plays.roles) != list(config.roles):
        raise UsageError(f"--data: its agents are {', '.join(plays.roles)}; this model moves "
                         f"{', '.join(config.roles)}")
    return plays
