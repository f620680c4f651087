"""The iGAN edit search (gencli.editing) on a small generator with a known manifold: the search honours strokes,
candidate 0 starts at the picture being edited, the pull keeps results near it, and bad strokes are refused."""

from __future__ import annotations

import pytest
import torch

from gencli.editing import Strokes, colour_error, edge_strength, edit_search, morph, nearest_images

torch.manual_seed(0)
BASIS = torch.randn(8, 1, 12, 12)  # the generator's "manifold": images are sigmoids of mixes of 8 patterns


def generate(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(torch.einsum("bk,kchw->bchw", z, BASIS))  # (B, 1, 12, 12) in [0, 1]


def stroke(value: float) -> Strokes:
    mask = torch.zeros(12, 12)
    mask[3:9, 5:7] = 1.0  # a vertical bar
    return Strokes(colour=torch.full((1, 12, 12), value), colour_mask=mask)


def test_the_search_honours_a_colour_stroke() -> None:
    start = torch.zeros(8)  # a flat grey image (0.5 everywhere)
    result = edit_search(generate, start, stroke(1.0), candidates=8, steps=30, keep=3)
    assert result.images.shape == (3, 1, 12, 12) and result.latents.shape == (3, 8)
    assert result.start_colour_error == pytest.approx(0.25, abs=1e-6)  # (1 - 0.5)^2 on every painted pixel
    assert float(result.colour_errors[0]) < 0.5 * result.start_colour_error
    assert torch.all(result.costs[:-1] <= result.costs[1:])  # best first
    # The images come from the generator: each candidate is what its latent makes.
    assert torch.allclose(result.images, generate(result.latents), atol=1e-6)


def test_without_steps_the_best_candidate_is_the_start_or_closer() -> None:
    start = torch.randn(8)
    result = edit_search(generate, start, stroke(0.0), candidates=4, steps=0, keep=4, pull=0.0)
    errors = colour_error(generate(result.latents), stroke(0.0))
    assert torch.allclose(errors, result.colour_errors, atol=1e-6)
    assert any(torch.allclose(z, start) for z in result.latents)  # candidate 0 is the start latent itself


def test_a_strong_pull_keeps_the_result_near_the_start() -> None:
    start = torch.randn(8)
    loose = edit_search(generate, start, stroke(1.0), candidates=6, steps=25, pull=0.0, keep=1)
    tight = edit_search(generate, start, stroke(1.0), candidates=6, steps=25, pull=10.0, keep=1)
    assert (tight.latents[0] - start).norm() < (loose.latents[0] - start).norm()


def test_edge_strokes_ask_for_an_edge_where_drawn() -> None:
    edge_mask = torch.zeros(12, 12)
    edge_mask[2:10, 6] = 1.0
    strokes = Strokes(colour=torch.zeros(1, 12, 12), colour_mask=torch.zeros(12, 12), edge_mask=edge_mask)
    start = torch.zeros(8)  # flat: no edge anywhere
    result = edit_search(generate, start, strokes, candidates=8, steps=30, keep=1)
    before = (edge_strength(generate(start[None]))[0] * edge_mask).sum()
    after = (edge_strength(result.images)[0] * edge_mask).sum()
    assert after > before + 1.0


def test_nothing_painted_and_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="nothing was painted"):
        edit_search(generate, torch.zeros(8), Strokes(torch.zeros(1, 12, 12), torch.zeros(12, 12)))
    with pytest.raises(ValueError, match="must be"):
        Strokes(torch.zeros(1, 12, 12), torch.zeros(6, 6))


def test_morph_runs_from_the_start_to_the_end_image() -> None:
    a, b = torch.randn(8), torch.randn(8)
    frames = morph(generate, a, b, frames=5)
    assert frames.shape == (5, 1, 12, 12)
    assert torch.allclose(frames[0], generate(a[None])[0], atol=1e-6)
    assert torch.allclose(frames[-1], generate(b[None])[0], atol=1e-6)


def test_nearest_images_finds_the_closest_first() -> None:
    pool = torch.rand(20, 1, 4, 4)
    query = pool[[7, 3]] + 0.001
    index = nearest_images(query, pool, 3)
    assert index.shape == (2, 3) and index[:, 0].tolist() == [7, 3]
