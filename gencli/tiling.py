"""Run an image-to-image network over a large image in overlapping tiles, so memory stays bounded.

A convolutional network's output pixel depends only on the input pixels within its receptive field. Each tile
is therefore computed from a window that reaches ``overlap`` input pixels beyond the tile on every side (less
where the image ends), and only the tile's own part of the output is kept. When ``overlap`` is at least the
network's receptive-field radius, every kept pixel saw exactly what it would have seen in one pass over the
whole image: the result equals the untiled one (up to float rounding) and there are no seams to blend away.

Memory: one window's activations at a time, plus the output image itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def tiled(apply: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *, tile: int, overlap: int,
          scale: int = 1, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``apply`` over ``image`` (1, C, H, W) tile by tile; returns what ``apply(image)`` would, (1, C', H*scale,
    W*scale), on ``image``'s device.

    ``apply`` maps (1, C, h, w) to (1, C', h*scale, w*scale) for any h, w (a fully convolutional network).
    ``tile``: side of the part of the input each pass keeps; ``overlap``: the extra context around it (at least
    the receptive-field radius, in input pixels). ``progress(done, total)`` is called after each tile.
    """
    import torch

    if tile < 1 or overlap < 0:
        raise ValueError(f"tile {tile} must be positive and overlap {overlap} not negative")
    _, _, height, width = image.shape
    rows, cols = range(0, height, tile), range(0, width, tile)
    total, done = len(rows) * len(cols), 0
    output: torch.Tensor | None = None
    for top in rows:
        for left in cols:
            bottom, right = min(top + tile, height), min(left + tile, width)
            # The window: the tile plus up to `overlap` pixels of context on each side, inside the image.
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
            result = apply(image[:, :, y0:y1, x0:x1])  # (1, C', (y1-y0)*scale, (x1-x0)*scale)
            if output is None:
                output = torch.empty(1, result.shape[1], height * scale, width * scale, dtype=result.dtype,
                                     device=result.device)
            keep = result[:, :, (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
            output[:, :, top * scale:bottom * scale, left * scale:right * scale] = keep
            done += 1
            if progress is not None:
                progress(done, total)
    assert output is not None  # an image has at least one pixel, so at least one tile
    return output
