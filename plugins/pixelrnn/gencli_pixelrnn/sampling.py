"""Generation pixel by pixel (and colour by colour), with two interchangeable steppers:

* ``NaiveStepper`` runs the whole network on the whole image for every pixel (H x W x C passes);
* ``CachedStepper`` caches every layer's activations (Ramachandran et al. 2017, "Fast Generation for
  Convolutional Autoregressive Models"; see ``incremental.py``): each row starts with one row-wide step per
  layer for what the rows above contribute, and each pixel then costs a few (B, channels) matrix products per
  layer, at that pixel alone, and the output head at that pixel.

Both give the same logits (tests check it), and both draw from one generator in the same order, so a seed
gives the same images whichever stepper runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from gencli_pixelrnn import incremental
from gencli_pixelrnn.model import PixelRNN


class NaiveStepper:
    """The reference: a full forward pass for every pixel."""

    def __init__(self, model: PixelRNN, values: torch.Tensor) -> None:
        self.model, self.values = model, values  # values (B, C, H, W), in pixel units

    def logits_at(self, i: int, j: int) -> torch.Tensor:
        return self.model(self.model.encode(self.values))[:, :, :, i, j]  # (B, C, K)

    def set(self, i: int, j: int, channel: int, value: torch.Tensor) -> None:
        self.values[:, channel, i, j] = value

    def end_row(self, i: int) -> None:
        return None


class CachedStepper:
    """Every layer's activations cached; one pixel's worth of work per layer per pixel (module docstring).
    Rows are visited in order: ``logits_at(i, j)`` for a new row i starts that row in every layer."""

    def __init__(self, model: PixelRNN, values: torch.Tensor) -> None:
        self.model, self.values = model, values
        batch, _, _, width = values.shape
        like = model.encode(values[:1, :1, :1, :1])
        self.stem = incremental.STEMS[type(model.stem)](model.stem, batch, width, like)
        self.blocks = [incremental.BLOCKS[type(block)](block, batch, width, like) for block in model.blocks]
        self.head = incremental.Head(model)
        self.row = -1

    def logits_at(self, i: int, j: int) -> torch.Tensor:
        if i != self.row:
            self.row, vertical = i, self.stem.start_row(i)  # vertical: the gated stacks' row, else None
            for block in self.blocks:
                vertical = block.start_row(i, vertical)
        features = self.stem.pixel(j)  # (B, map channels the head reads)
        for block in self.blocks:
            features = block.pixel(j, features)
        return self.head(features)  # (B, C, K)

    def set(self, i: int, j: int, channel: int, value: torch.Tensor) -> None:
        self.values[:, channel, i, j] = value
        self.stem.set(j, channel, self.model.encode(value))

    def end_row(self, i: int) -> None:
        self.stem.end_row()
        for block in self.blocks:
            block.end_row()


STEPPERS = {"cached": CachedStepper, "naive": NaiveStepper}


def draw(logits: torch.Tensor, levels: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """One value per image from logits (B, K): a uniform draw through the inverse CDF, so the same
    generator state picks the same value from (nearly) equal logits."""
    uniform = torch.rand(logits.shape[0], generator=generator, device=logits.device)
    if levels == 2:
        return (uniform < torch.sigmoid(logits[:, 0].float() / temperature)).float()
    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum(-1)
    return torch.searchsorted(cdf, uniform[:, None]).clamp(max=levels - 1)[:, 0].float()


def generate(model: PixelRNN, values: torch.Tensor, *, keep_rows: int = 0, temperature: float = 1.0,
             generator: torch.Generator, stepper: str = "cached",
             progress: Callable[[int, int], None] | None = None, progress_every: float = 0.05,
             stop_row: int | None = None) -> torch.Tensor:
    """Fill ``values`` (B, C, H, W, pixel units) from row ``keep_rows`` down; rows above it stay as given.
    ``progress(done, total)`` counts pixels over the batch (given rows too: they cost a step), at most every
    ``progress_every`` seconds and after the last pixel: a terminal bar redrawn per pixel doubled the time.
    ``stop_row`` ends early (the benchmark times a few rows of the slow naive sampler)."""
    batch, colours, height, width = values.shape
    run = STEPPERS[stepper](model, values)
    total = batch * height * width
    if progress is not None:
        progress(0, total)  # generation proper starts now
    reported = time.monotonic()
    for i in range(height if stop_row is None else stop_row):
        for j in range(width):
            for channel in range(colours):
                if i < keep_rows:
                    if stepper == "cached":  # the caches still need the given rows' features
                        run.logits_at(i, j)
                    run.set(i, j, channel, values[:, channel, i, j])
                    continue
                chosen = draw(run.logits_at(i, j)[:, channel], model.levels, temperature, generator)
                run.set(i, j, channel, chosen)
            done = batch * (i * width + j + 1)
            if progress is not None and (time.monotonic() - reported >= progress_every or done == total):
                progress(done, total)
                reported = time.monotonic()
        run.end_row(i)
    return values


def teacher_forced_logits(model: PixelRNN, values: torch.Tensor, stepper: str) -> torch.Tensor:
    """Logits (B, C, K, H, W) that a stepper computes while the given image is written pixel by pixel;
    for checking a stepper against one full forward pass."""
    _, colours, height, width = values.shape
    run = STEPPERS[stepper](model, torch.zeros_like(values))
    out: list[Any] = []
    for i in range(height):
        row = []
        for j in range(width):
            per_channel = []
            for channel in range(colours):
                per_channel.append(run.logits_at(i, j)[:, channel])
                run.set(i, j, channel, values[:, channel, i, j])
            row.append(torch.stack(per_channel, dim=1))  # (B, C, K)
        run.end_row(i)
        out.append(torch.stack(row, dim=-1))  # (B, C, K, W)
    return torch.stack(out, dim=-2)  # (B, C, K, H, W)
