"""gencli.tiling.tiled: tile by tile, the same image as one pass, when the overlap covers the receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gencli.tiling import tiled


def network(scale: int) -> nn.Module:
    """Receptive-field radius 3 input pixels (three 3x3 convolutions), then a pixel-shuffle upscale."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)).eval()


@pytest.mark.parametrize("scale", [1, 2])
def test_tiles_with_enough_overlap_equal_one_pass(scale):
    model, image = network(scale), torch.rand(1, 3, 23, 30)
    calls = []
    with torch.no_grad():
        whole = model(image)
        pieces = tiled(model, image, tile=8, overlap=3, scale=scale, progress=lambda d, t: calls.append((d, t)))
    assert pieces.shape == whole.shape == (1, 3, 23 * scale, 30 * scale)
    torch.testing.assert_close(pieces, whole, rtol=1e-5, atol=1e-6)
    assert calls[-1] == (12, 12)  # 3 rows x 4 columns of tiles


def test_too_little_overlap_shows_at_the_seams():
    model, image = network(1), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(tiled(model, image, tile=8, overlap=1), model(image), atol=1e-4)
