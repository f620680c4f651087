"""Interactive image editing on a GAN's manifold (iGAN: Zhu, Krahenbuhl, Shechtman & Efros, ECCV 2016).

The user paints colour strokes and/or draws edges over a generated image. The search looks for latents whose
images honour the strokes while staying images the generator makes, by optimising a batch of candidate latents
with Adam on

    cost(z) = masked colour error + 0.2 * masked edge error + pull * mean((z - z_start)^2)

(the weights iGAN's code uses: colour and edge terms at 1 : 0.2, and a pull toward the starting latent so the
result stays close to the picture being edited). Candidate 0 starts at the start latent itself, the others at
growing random steps away from it, so the search can keep the picture or jump to a nearby one. The best few
come back with their costs, and ``morph`` walks the latent line from the start image to a chosen candidate.

Plain library code: a generator function, a start latent and the strokes in, candidates out. ``gencli serve``
puts a canvas in front of it; tests and ``benchmarks/`` call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

Generate = Callable[[torch.Tensor], torch.Tensor]  # latents (B, z_dim) -> images (B, C, H, W) in [0, 1]
EDGE_WEIGHT = 0.2  # iGAN's weight of the edge term against the colour term


@dataclass
class Strokes:
    """What the user painted, at the generator's resolution.

    ``colour``: (C, H, W) in [0, 1], the painted colour where ``colour_mask`` is set; ``colour_mask``: (H, W) in
    [0, 1], how strongly each pixel was painted; ``edge_mask``: (H, W) in [0, 1], where an edge was drawn
    (None: no edge strokes)."""

    colour: torch.Tensor
    colour_mask: torch.Tensor
    edge_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.colour.dim() != 3 or self.colour_mask.shape != self.colour.shape[1:]:
            raise ValueError(f"strokes: colour {tuple(self.colour.shape)} and mask {tuple(self.colour_mask.shape)} "
                             "must be (C, H, W) and (H, W)")
        if self.edge_mask is not None and self.edge_mask.shape != self.colour_mask.shape:
            raise ValueError("strokes: the edge mask must have the colour mask's shape")

    @property
    def empty(self) -> bool:
        painted = float(self.colour_mask.sum())
        drawn = 0.0 if self.edge_mask is None else float(self.edge_mask.sum())
        return painted + drawn == 0.0


@dataclass
class EditResult:
    """The ``keep`` best candidates, best first."""

    images: torch.Tensor  # (K, C, H, W) in [0, 1]
    latents: torch.Tensor  # (K, z_dim)
    costs: torch.Tensor  # (K,) the full cost
    colour_errors: torch.Tensor  # (K,) the masked colour error alone
    start_colour_error: float  # the start image's masked colour error, for "how much closer did it get"


def edge_strength(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B, H, W) in [0, 1]: Sobel gradient magnitude of the luminance, saturating at a
    step of half the intensity range (a drawn edge asks for a clear edge, not a maximal one)."""
    grey = images.mean(1, keepdim=True)  # (B, 1, H, W)
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype) / 4.0
    kernels = torch.stack([sobel_x, sobel_x.T])[:, None].to(images.device)  # (2, 1, 3, 3)
    gradients = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)  # (B, 2, H, W)
    magnitude = gradients.square().sum(1).add(1e-8).sqrt()  # (B, H, W)
    return (magnitude / 0.5).clamp(max=1.0)


def colour_error(images: torch.Tensor, strokes: Strokes) -> torch.Tensor:
    """(B,) mean squared colour difference over the painted pixels (weighted by the mask)."""
    weight = strokes.colour_mask.to(images)  # (H, W)
    total = weight.sum().clamp_min(1e-8) * images.shape[1]
    return ((images - strokes.colour.to(images)).square() * weight).sum((1, 2, 3)) / total


def edge_error(images: torch.Tensor, strokes: Strokes) -> torch.Tensor:
    """(B,) mean of (1 - edge strength)^2 over the drawn edge pixels; zeros when no edge was drawn."""
    if strokes.edge_mask is None or float(strokes.edge_mask.sum()) == 0.0:
        return images.new_zeros(images.shape[0])
    weight = strokes.edge_mask.to(images)
    return ((1.0 - edge_strength(images)).square() * weight).sum((1, 2)) / weight.sum()


def edit_search(generate: Generate, start: torch.Tensor, strokes: Strokes, *, candidates: int = 32,
                steps: int = 25, lr: float = 0.1, pull: float = 0.2, spread: float = 1.0, keep: int = 4,
                seed: int = 0) -> EditResult:
    """Optimise ``candidates`` latents for ``steps`` Adam steps from around ``start`` (z_dim,); the ``keep`` with
    the lowest cost come back. ``spread``: the largest random step (in units of the prior's standard deviation)
    between the start latent and a candidate's starting point. ``pull`` 0.2 was the best of 0.02 to 1 on the
    bundled dcgan (benchmarks/gan_editing.py, 20 random strokes): the colour error fell by 94% (median) while the
    digit classifier's confidence stayed that of unedited samples (0.84 against 0.83); at 1 the fall was 72%."""
    if candidates < 1 or steps < 0 or keep < 1:
        raise ValueError("edit_search: candidates and keep must be at least 1, steps at least 0")
    if strokes.empty:
        raise ValueError("edit_search: nothing was painted")
    start = start.detach().float().flatten()
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(candidates, start.numel(), generator=generator)  # (K, z_dim)
    radius = torch.linspace(0.0, spread, candidates)[:, None]  # candidate 0 is the start latent itself
    latents = (start + radius * noise).requires_grad_(True)
    optimizer = torch.optim.Adam([latents], lr=lr)

    def costs_of(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images = generate(z)  # (K, C, H, W)
        colour = colour_error(images, strokes)
        cost = colour + EDGE_WEIGHT * edge_error(images, strokes) + pull * (z - start).square().mean(1)
        return cost, colour, images

    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            cost, _, _ = costs_of(latents)
            cost.sum().backward()  # candidates are independent: the sum's gradient is each one's own
            optimizer.step()
    with torch.no_grad():
        cost, colour, images = costs_of(latents)
        start_error = float(colour_error(generate(start[None]), strokes)[0])
        order = cost.argsort()[:keep]
        return EditResult(images[order].clamp(0.0, 1.0), latents.detach()[order], cost[order], colour[order],
                          start_error)


def morph(generate: Generate, start: torch.Tensor, end: torch.Tensor, frames: int = 8) -> torch.Tensor:
    """(frames, C, H, W): the images along the straight latent line from ``start`` to ``end``, both included."""
    t = torch.linspace(0.0, 1.0, max(frames, 2))[:, None]
    with torch.no_grad():
        return generate((1 - t) * start.flatten() + t * end.flatten()).clamp(0.0, 1.0)


def nearest_images(images: torch.Tensor, pool: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (N, k) of the ``k`` images of ``pool`` (M, C, H, W) nearest each of ``images`` (N, C, H, W) in
    pixel L2, nearest first; both in [0, 1]."""
    k = min(k, pool.shape[0])
    distances = torch.cdist(images.flatten(1).double(), pool.flatten(1).double())  # (N, M)
    return distances.topk(k, dim=1, largest=False).indices
