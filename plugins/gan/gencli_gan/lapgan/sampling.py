"""``gencli sample lapgan``: grids, class rows (``--label``), whole pyramids (``--levels``) and the nearest
training images (``--neighbours``).

Sample i of ``-n N --seed S`` draws all its codes (z and every level's noise plane) from seed S + i, so any
image of a grid can be recalled with ``-n 1 --seed S+i``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from gencli.errors import UsageError
from gencli.plugin import Images, SampleRequest
from gencli_gan.lapgan.model import level_sides, training_images
from gencli_gan.sampling import beside_pool, class_index, to_uint8


def seed_codes(seed: int, config: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(z (z_dim,), [noise (1, s, s) per refinement level]) of one seed."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(config.z_dim, generator=generator)
    return z, [torch.randn(1, side, side, generator=generator) for side in level_sides(config)[1:]]


def codes_for(seeds: list[int], config: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(z (N, z_dim), [noise (N, 1, s, s) per refinement level]) for N seeds."""
    drawn = [seed_codes(seed, config) for seed in seeds]
    z = torch.stack([codes[0] for codes in drawn])
    noises = [torch.stack([codes[1][level] for codes in drawn]) for level in range(len(drawn[0][1]))]
    return z, noises


def generate(model: Any, z: torch.Tensor, noises: list[torch.Tensor], labels: torch.Tensor | None,
             device: torch.device, chunk: int = 1) -> list[torch.Tensor]:
    """Every level in [0, 1] on the CPU, coarsest first, ``chunk`` samples per forward pass (1 in ``sample``:
    a batched convolution may round differently, and an image must not depend on its neighbours in a grid)."""
    model.eval()
    parts = []
    for start in range(0, z.shape[0], chunk):
        rows = slice(start, start + chunk)
        levels = model.generate(z[rows].to(device), tuple(noise[rows].to(device) for noise in noises),
                                None if labels is None else labels[rows].to(device))
        parts.append([level.float().cpu() for level in levels])
    return [torch.cat(level) for level in zip(*parts)]


def asked_labels(options: Any, config: Any, n: int) -> tuple[list[int], torch.Tensor | None, int | None]:
    """(seed offsets, labels or None, grid columns) for --label: "" (i mod K), a class, or "all"."""
    if not config.num_classes:
        if options.label:
            raise UsageError(f"--label {options.label!r}: this LAPGAN is unconditional (it was trained on images "
                             "without class sub-folders)")
        return list(range(n)), None, None
    if options.label == "all":
        # One row per class; column j uses seed S+j in every row, so a column keeps its "style".
        per_row = n if n > 1 else 10
        labels = torch.arange(config.num_classes).repeat_interleave(per_row)
        return list(range(per_row)) * config.num_classes, labels, per_row
    if options.label == "":
        return list(range(n)), torch.arange(n) % config.num_classes, None
    return list(range(n)), torch.full((n,), class_index(options.label, config)), None


def sample(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    if options.levels and options.neighbours:
        raise UsageError("--levels and --neighbours are separate pictures; give one of them")
    if options.levels and options.label == "all":
        raise UsageError("--levels shows one sample's pyramid per row and --label all one class per row; "
                         "give one of them (e.g. --label 7 --levels)")
    offsets, labels, columns = asked_labels(options, config, request.n)
    z, noises = codes_for([request.seed + offset for offset in offsets], config)
    levels = generate(model, z, noises, labels, request.device)
    if options.levels:
        return Images(to_uint8(pyramid_rows(levels)), columns=len(levels))
    images = levels[-1]
    if options.neighbours:
        pool = training_images(config.training_data, config).pixels
        images, columns = beside_pool(images, pool, config.training_data, options.neighbours)
    return Images(to_uint8(images), columns=columns)


def pyramid_rows(levels: list[torch.Tensor]) -> torch.Tensor:
    """One row per sample, its levels coarse to fine, each enlarged to full size by repeating pixels (so a
    coarse level shows its true resolution): (N * levels, C, H, W)."""
    side = levels[-1].shape[-1]
    enlarged = [F.interpolate(level, size=(side, side), mode="nearest") for level in levels]
    return torch.stack(enlarged, dim=1).flatten(0, 1)
