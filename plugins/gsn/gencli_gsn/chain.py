"""Running the GSN's Markov chain: from noise or from an image, with rows of the image optionally clamped.

The chain's state is the visible sample x (a Bernoulli draw from the last x_hat) and the hidden layers; what
is shown and scored at each step is x_hat itself, the expected image, as the paper's figures show it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gencli.data.images import load_image
from gencli.errors import UsageError
from gencli.plugin import Images, SampleRequest
from gencli_gsn.model import GSNNet


class Chain:
    """``batch`` chains started at ``start`` (B, V) in [0, 1]; pixels where ``clamp`` (V,) is True keep the start's
    values in every state, shown and fed back (conditional sampling, the paper's inpainting)."""

    def __init__(self, model: GSNNet, start: torch.Tensor, clamp: torch.Tensor | None = None) -> None:
        self.model, self.clamp, self.start = model, clamp, start
        self.x = start
        self.hiddens = model.initial_hiddens(start.shape[0])

    def advance(self) -> torch.Tensor:
        """One step; x_hat (B, V) in [0, 1]."""
        logits, self.hiddens = self.model.step(self.model.corrupt(self.x), self.hiddens)
        expected = torch.sigmoid(logits)
        self.x = torch.bernoulli(expected)
        if self.clamp is not None:
            expected = torch.where(self.clamp, self.start, expected)
            self.x = torch.where(self.clamp, self.start, self.x)
        return expected

    def run(self, steps: int, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """``steps`` steps; the last x_hat (the start itself for 0 steps)."""
        expected = self.start
        for done in range(1, steps + 1):
            expected = self.advance()
            if progress is not None and (done % 50 == 0 or done == steps):
                progress(done, steps)
        return expected


def noise_start(model: GSNNet, batch: int) -> torch.Tensor:
    """(B, V) binary noise drawn at the model's base rates sigmoid(b_0), which training set from the digits'
    mean pixels: dark borders, a grey blur in the middle (uniform noise starts far from any digit)."""
    rates = torch.sigmoid(model.biases[0].detach())  # (V,)
    return torch.bernoulli(rates.expand(batch, -1))


def to_images(expected: torch.Tensor, size: int) -> torch.Tensor:
    """(N, V) in [0, 1] -> uint8 (N, size, size, 1)."""
    return (expected.clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, size, size, 1).cpu()


def check_options(options: Any, config: Any) -> None:
    if options.chain is not None and options.chain < 1:
        raise UsageError(f"--chain must be at least 1 (got {options.chain}): the number of chain steps to show")
    if options.every < 1:
        raise UsageError("--every must be at least 1")
    if options.chain is None and options.every != 1:
        raise UsageError("--every thins a --chain: give --chain STEPS too")
    if options.chain is not None and options.every > options.chain:
        raise UsageError(f"--every {options.every} is more than --chain {options.chain}: no state to show")
    if options.burn_in < 0:
        raise UsageError("--burn-in must be at least 0")
    if options.clamp_rows and options.start is None:
        raise UsageError("--clamp-rows needs --start IMAGE: the rows to keep come from that image")
    if not 0 <= options.clamp_rows <= config.image_size:
        raise UsageError(f"--clamp-rows must be between 0 and the image height {config.image_size}")


def start_and_clamp(model: GSNNet, options: Any, config: Any, n: int,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The chains' first visible state (n, V) and the clamped pixels (V,) bool, or None."""
    visible = config.image_size ** 2
    if options.start is None:
        return noise_start(model, n), None
    image = load_image(options.start, config.image_size, 1).float().reshape(1, visible) / 255.0  # (1, V)
    start = image.to(device).expand(n, visible).contiguous()
    if not options.clamp_rows:
        return start, None
    clamp = torch.zeros(config.image_size, config.image_size, dtype=torch.bool, device=device)
    clamp[:options.clamp_rows] = True  # the top rows
    return start, clamp.flatten()


def sample_images(model: GSNNet, config: Any, options: Any, request: SampleRequest) -> Images:
    check_options(options, config)
    start, clamp = start_and_clamp(model, options, config, request.n, request.device)
    chain = Chain(model, start, clamp)
    size = config.image_size
    if options.chain is None:
        return Images(to_images(chain.run(options.burn_in, request.progress), size).numpy())
    frames = [to_images(start, size)] if options.start is not None else []  # an image start is state 0
    for step in range(1, options.chain + 1):
        expected = chain.advance()
        if step % options.every == 0:
            frames.append(to_images(expected, size))
        if step % 50 == 0 or step == options.chain:
            request.progress(step, options.chain)
    grid = torch.stack(frames, dim=1).reshape(-1, size, size, 1)  # (n chains x frames), chain by chain
    # One chain wraps over rows of 10 in reading order; several chains get a row each.
    columns = min(len(frames), 10) if request.n == 1 else len(frames)
    return Images(grid.numpy(), columns=columns)
