"""Generation pixel by pixel (and colour by colour), with two interchangeable steppers:

* ``NaiveStepper`` runs the whole network on the whole image for every pixel (H x W x C passes);
* ``CachedStepper`` keeps every layer's feature map and recurrent state and, once a pixel changes,
  recomputes only the current row of each layer from the few rows above it that the layer reads
  (its ``reach``): convolutions read ``reach + 1`` cached rows, the Row LSTM one row step from the state of
  the row above, the Diagonal BiLSTM one cell for the forward direction (the backward direction is swept once
  per finished row). The output head runs at the one pixel being drawn.

Both give the same logits (tests check it), and both draw from one generator in the same order, so a seed
gives the same images whichever stepper runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

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
    """Recomputes one row per layer per pixel; see the module docstring."""

    def __init__(self, model: PixelRNN, values: torch.Tensor) -> None:
        self.model, self.values = model, values
        batch, _, height, width = values.shape
        x = model.encode(values)
        # maps[0]: encoded pixels; maps[1]: the stem's output; maps[k + 2]: block k's output.
        self.maps = [x] + [x.new_zeros(batch, model.map_channels, height, width)
                           for _ in range(len(model.blocks) + 1)]
        self.states = [block.start(batch, width, x) for block in model.blocks]

    def _rows(self, index: int, i: int, reach: int) -> torch.Tensor:
        return self.maps[index][:, :, max(0, i - reach): i + 1]

    def logits_at(self, i: int, j: int) -> torch.Tensor:
        model = self.model
        self.maps[1][:, :, i] = model.stem(self._rows(0, i, model.stem.reach))[:, :, -1]
        for k, (block, state) in enumerate(zip(model.blocks, self.states)):
            self.maps[k + 2][:, :, i] = block.step(self._rows(k + 1, i, block.reach), state, j)[:, :, -1]
        return model.logits(self.maps[-1][:, :, i:i + 1, j:j + 1])[:, :, :, 0, 0]  # (B, C, K)

    def set(self, i: int, j: int, channel: int, value: torch.Tensor) -> None:
        self.values[:, channel, i, j] = value
        self.maps[0][:, channel, i, j] = self.model.encode(value)

    def end_row(self, i: int) -> None:
        for k, (block, state) in enumerate(zip(self.model.blocks, self.states)):
            block.end_row(self.maps[k + 1][:, :, i:i + 1], state)


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
             progress: Callable[[int, int], None] | None = None, stop_row: int | None = None) -> torch.Tensor:
    """Fill ``values`` (B, C, H, W, pixel units) from row ``keep_rows`` down; rows above it stay as given.
    ``stop_row`` ends early (the benchmark times a few rows of the slow naive sampler)."""
    _, colours, height, width = values.shape
    run = STEPPERS[stepper](model, values)
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
        run.end_row(i)
        if progress is not None:
            progress(i + 1, height)
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
