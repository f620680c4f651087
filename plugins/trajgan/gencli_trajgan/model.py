"""The networks: a recurrent generator over all agents jointly and a recurrent discriminator over whole plays.

Generator (one GRU, all A agents in one state):

    first frame   x_0 ~ a mixture of M diagonal Gaussians over all A*2 coordinates;  h_0 = tanh(W x_0)
    each frame t  g_t ~ softmax(MacroHead([h_t, onehot(g_{t-1})]))   (per player; with --macro-goals on)
                  h_{t+1} = GRU([x_t, x_t - x_{t-1}, onehot(g_t)], h_t)       (x_{-1} = x_0)
                  x_{t+1} = x_t + step_scale * (mu(h_{t+1}) + sigma(h_{t+1}) * eps),  eps ~ N(0, I)

so macro-goals are chosen first and movement follows them, as in Zheng et al.'s hierarchical policy. The
noise eps is drawn by reparameterisation, so the discriminator's gradient reaches every move of a
free-running play. Teacher forcing (the real x_{t-1} and g_t) gives the likelihood terms.

Discriminator: a bidirectional GRU over (positions, moves) of all agents, frame by frame; its mean and last
states give one logit per play.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 2.0


@dataclass
class Rollout:
    units: torch.Tensor  # (B, T, A, 2) positions in court units
    goals: torch.Tensor  # (B, T, P) macro-goals (empty (B, T, 0) without them)


class Generator(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        self.agents = len(config.roles) or config.agents + 1
        self.players = config.agents
        self.goal_count = config.goal_count
        self.mixtures = config.mixtures
        self.step_scale = config.step_scale or 0.01
        coords = self.agents * 2
        goal_inputs = self.players * self.goal_count
        hidden = config.hidden_size
        # First frame: mixture weights, means and log-sigmas over the A*2 coordinates.
        self.first_logits = nn.Parameter(torch.zeros(config.mixtures))
        self.first_mean = nn.Parameter(torch.randn(config.mixtures, coords) * 0.5)
        self.first_log_sigma = nn.Parameter(torch.full((config.mixtures, coords), -1.5))
        self.gru = nn.GRU(2 * coords + goal_inputs, hidden, batch_first=True)  # positions, last moves, goals
        self.start = nn.Linear(coords, hidden)  # h_0 from the first frame
        self.move = nn.Linear(hidden, coords * 2)  # mu and log-sigma of the next move
        # The macro-goal policy reads the state and the goals so far (K + 1 inputs: "none yet" at t = 0).
        self.macro = (nn.Sequential(nn.Linear(hidden + self.players * (self.goal_count + 1), hidden), nn.Tanh(),
                                    nn.Linear(hidden, goal_inputs)) if self.goal_count else None)

    # -- pieces --

    def initial_state(self, first: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.start(first.flatten(1)))[None]  # (1, B, H)

    def goal_logits(self, state: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(B, ..., H) states and (B, ..., P) previous goals (K = none) -> (B, ..., P, K) logits."""
        onehot = F.one_hot(previous, self.goal_count + 1).flatten(-2).float()  # (B, ..., P*(K+1))
        logits = self.macro(torch.cat([state, onehot], dim=-1))  # (B, ..., P*K)
        return logits.unflatten(-1, (self.players, self.goal_count))

    def move_params(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.move(state).chunk(2, dim=-1)  # (B, ..., A*2) each
        return mu, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)

    def goal_inputs(self, goals: torch.Tensor) -> torch.Tensor:
        return F.one_hot(goals, self.goal_count).flatten(-2).float()  # (B, T, P*K)

    # -- likelihood (teacher forcing) --

    def log_likelihood(self, units: torch.Tensor, goals: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihoods of real plays (B, T, A, 2) and their goals (B, T, P)."""
        b, t = units.shape[:2]
        flat = units.flatten(2)  # (B, T, A*2)
        first_nll = -self.first_frame_log_prob(flat[:, 0]).mean() / flat.shape[-1]  # per coordinate
        moves = (flat[:, 1:] - flat[:, :-1]) / self.step_scale  # (B, T-1, A*2)
        last_moves = torch.cat([torch.zeros_like(moves[:, :1]), moves[:, :-1]], dim=1)  # the move into x_t
        inputs = torch.cat([flat[:, :-1], last_moves], dim=-1)  # x_t and its last move, t = 0..T-2
        if self.goal_count:
            inputs = torch.cat([inputs, self.goal_inputs(goals[:, :-1])], dim=-1)  # g_t drives x_t -> x_{t+1}
        states, _ = self.gru(inputs, self.initial_state(flat[:, 0]))  # (B, T-1, H)
        mu, log_sigma = self.move_params(states)  # (B, T-1, A*2)
        move_nll = (0.5 * ((moves - mu) / log_sigma.exp()) ** 2 + log_sigma + 0.9189385).mean()
        out = {"first_nll": first_nll, "move_nll": move_nll}
        if self.goal_count:
            # g_t is predicted from the state that has read x_{t-1} and g_{t-1} (h_0: the first frame alone).
            before = torch.cat([self.initial_state(flat[:, 0]).transpose(0, 1), states], dim=1)  # (B, T, H)
            previous = torch.cat([torch.full_like(goals[:, :1], self.goal_count), goals[:, :-1]], dim=1)
            logits = self.goal_logits(before, previous)  # (B, T, P, K)
            out["goal_nll"] = F.cross_entropy(logits.flatten(0, 2), goals.flatten())
        return out

    def first_frame_log_prob(self, first: torch.Tensor) -> torch.Tensor:
        """log p(x_0) under the mixture: (B, A*2) -> (B,)."""
        sigma = self.first_log_sigma.exp()  # (M, A*2)
        z = (first[:, None] - self.first_mean) / sigma  # (B, M, A*2)
        per_component = (-0.5 * z**2 - self.first_log_sigma - 0.9189385).sum(-1)  # (B, M)
        return torch.logsumexp(per_component + F.log_softmax(self.first_logits, 0), dim=-1)

    # -- free-running generation --

    def rollout(self, batch: int, frames: int, *, generator: torch.Generator | None = None,
                temperature: float = 1.0, given: torch.Tensor | None = None) -> Rollout:
        """Plays (B, frames, A, 2) in court units, differentiable through every Gaussian draw.

        ``given`` (B, G, A, 2) fixes the first G frames: the generator reads them (and picks goals for them)
        and generates the rest."""
        device = self.first_mean.device
        draw = lambda *shape: torch.randn(*shape, generator=generator, device=device)  # noqa: E731
        if given is not None:
            first = given[:, 0].flatten(1)  # (B, A*2)
        else:
            component = torch.multinomial(F.softmax(self.first_logits, 0).expand(batch, -1), 1,
                                          generator=generator)[:, 0]  # (B,)
            first = (self.first_mean[component]
                     + temperature * self.first_log_sigma[component].exp() * draw(batch, self.agents * 2))
        state = self.initial_state(first)  # (1, B, H)
        goal = torch.full((batch, self.players), self.goal_count, dtype=torch.long, device=device)  # "none yet"
        positions, goals = [first], []
        last_move = torch.zeros_like(first)  # (B, A*2) in step_scale units
        for t in range(frames):
            if self.goal_count:
                probs = F.softmax(self.goal_logits(state[0], goal), dim=-1)  # (B, P, K)
                goal = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(batch, self.players)
                goals.append(goal)
            if t == frames - 1:
                break
            inputs = torch.cat([positions[-1], last_move], dim=-1)
            if self.goal_count:
                inputs = torch.cat([inputs, self.goal_inputs(goal)], dim=-1)
            out, state = self.gru(inputs[:, None], state)  # (B, 1, H)
            mu, log_sigma = self.move_params(out[:, 0])  # (B, A*2)
            step = mu + temperature * log_sigma.exp() * draw(batch, self.agents * 2)
            following = positions[-1] + self.step_scale * step
            if given is not None and t + 1 < given.shape[1]:
                following = given[:, t + 1].flatten(1)  # the given frames stay as they are
            last_move = (following - positions[-1]) / self.step_scale
            positions.append(following)
        units = torch.stack(positions, dim=1).unflatten(-1, (self.agents, 2))  # (B, T, A, 2)
        goal_tensor = (torch.stack(goals, dim=1) if goals
                       else torch.zeros(batch, frames, 0, dtype=torch.long, device=device))
        return Rollout(units, goal_tensor)


class Discriminator(nn.Module):
    """Whole plays (B, T, A, 2) -> one logit each."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        agents = len(config.roles) or config.agents + 1
        self.step_scale = config.step_scale or 0.01
        self.gru = nn.GRU(agents * 4, config.d_hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(4 * config.d_hidden, config.d_hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(config.d_hidden, 1))

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        flat = units.flatten(2)  # (B, T, A*2)
        moves = torch.cat([torch.zeros_like(flat[:, :1]), flat[:, 1:] - flat[:, :-1]], dim=1) / self.step_scale
        states, _ = self.gru(torch.cat([flat, moves], dim=-1))  # (B, T, 2*Hd)
        summary = torch.cat([states.mean(1), states[:, -1]], dim=-1)  # (B, 4*Hd)
        return self.head(summary)[:, 0]


class TrajGAN(nn.Module):
    """Both players; ``forward`` is not used: the training step lives in ``training.py``."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
