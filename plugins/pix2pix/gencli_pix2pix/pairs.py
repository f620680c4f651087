"""Paired images (input A, target B) and the random batches pix2pix trains on.

A ``Pairs`` holds aligned uint8 tensors; ``direction`` BtoA simply swaps the two sides. Training batches are
dicts {"a": (B, Ca, H, W), "b": (B, Cb, H, W)} of uint8, drawn only from the engine's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DIRECTIONS = ("AtoB", "BtoA")


@dataclass
class Pairs:
    """``a`` uint8 (N, Ca, H, W) inputs, ``b`` uint8 (N, Cb, H, W) targets, ``labels`` int64 (N,) (-1: none)."""

    a: torch.Tensor
    b: torch.Tensor
    labels: torch.Tensor
    description: str

    def __len__(self) -> int:
        return self.a.shape[0]

    def oriented(self, direction: str) -> Pairs:
        """The pairs with A as input (AtoB) or B as input (BtoA)."""
        if direction == "AtoB":
            return self
        return Pairs(self.b, self.a, self.labels, f"{self.description}, B to A")

    def take(self, rows: torch.Tensor | slice, what: str) -> Pairs:
        return Pairs(self.a[rows], self.b[rows], self.labels[rows], f"{self.description}, {what}")


class PairBatches:
    """Random rows of ``pairs``, each mirrored left-right with probability 1/2 when ``flip`` (both sides
    together: the paper's "mirroring"; off for digits, whose mirror image is not a digit)."""

    def __init__(self, pairs: Pairs, flip: bool = False) -> None:
        self.pairs, self.flip = pairs, flip

    def batch(self, generator: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        rows = torch.randint(0, len(self.pairs), (batch_size,), generator=generator)
        a, b = self.pairs.a[rows], self.pairs.b[rows]  # (B, C, H, W) each
        if self.flip:
            mirrored = torch.rand(batch_size, generator=generator) < 0.5  # (B,)
            a = torch.where(mirrored[:, None, None, None], a.flip(-1), a)
            b = torch.where(mirrored[:, None, None, None], b.flip(-1), b)
        return {"a": a, "b": b}


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) -> uint8 grey (..., 1, H, W), ITU-R 601 weights as Pillow's convert("L")."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    grey = (rgb.float() * weights).sum(dim=-3, keepdim=True)
    return grey.round().clamp(0, 255).to(torch.uint8)
