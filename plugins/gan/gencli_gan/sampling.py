"""``gencli sample gan|dcgan|cgan``: grids, latent interpolations, latent arithmetic, class rows and the
nearest-training-image check."""

from __future__ import annotations

from typing import Any

import torch

from gencli.editing import nearest_images
from gencli.errors import UsageError
from gencli.plugin import Images, SampleRequest
from gencli_gan.latents import interpolation, parse_arithmetic, seed_latent, seed_latents
from gencli_gan.training import training_images


def sample(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    if hasattr(options, "label"):
        images, columns = conditional(model, config, options, request)
    else:
        images, columns = unconditional(model, config, options, request)
    if options.neighbours < 0:
        raise UsageError("--neighbours must be 0 or more")
    if options.neighbours:
        images, columns = beside_neighbours(images, config, options.neighbours)
    return Images(to_uint8(images), columns=columns)


def unconditional(model: Any, config: Any, options: Any, request: SampleRequest) -> tuple[torch.Tensor, int | None]:
    """(images in [0, 1] (N, C, H, W), grid columns)."""
    if options.interpolate and options.arithmetic:
        raise UsageError("--interpolate and --arithmetic are separate pictures; give one of them")
    if options.neighbours and (options.interpolate or options.arithmetic):
        raise UsageError("--neighbours goes with plain samples, not with --interpolate or --arithmetic")
    if options.interpolate:
        # Row r walks from seed S+2r to seed S+2r+1: its end images are those of `-n 1 --seed S+2r` (and +1).
        rows = [interpolation(seed_latent(request.seed + 2 * r, config.z_dim),
                              seed_latent(request.seed + 2 * r + 1, config.z_dim), options.steps, options.path)
                for r in range(request.n)]
        return generate(model, torch.cat(rows), None, request.device), options.steps
    if options.arithmetic:
        terms, result = parse_arithmetic(options.arithmetic, config.z_dim)
        z = torch.stack([z for _, z in terms] + [result])  # the terms, then the result, in one row
        return generate(model, z, None, request.device), len(terms) + 1
    return generate(model, seed_latents(request.seed, request.n, config.z_dim), None, request.device), None


def conditional(model: Any, config: Any, options: Any, request: SampleRequest) -> tuple[torch.Tensor, int | None]:
    classes = config.num_classes
    if options.label == "all":
        # One row per class; column j uses seed S+j in every row, so a column keeps its "style".
        per_row = request.n if request.n > 1 else 10
        z = seed_latents(request.seed, per_row, config.z_dim).repeat(classes, 1)  # (classes * per_row, z_dim)
        labels = torch.arange(classes).repeat_interleave(per_row)
        return generate(model, z, labels, request.device), per_row
    z = seed_latents(request.seed, request.n, config.z_dim)
    if options.label == "":
        labels = torch.arange(request.n) % classes
    else:
        labels = torch.full((request.n,), class_index(options.label, config))
    return generate(model, z, labels, request.device), None


def class_index(label: str, config: Any) -> int:
    """A class name (a sub-folder's name, or a digit for MNIST) or an index."""
    if label in config.classes:
        return config.classes.index(label)
    if label.isdigit() and int(label) < config.num_classes:
        return int(label)
    shown = ", ".join(config.classes[:12]) + (" ..." if len(config.classes) > 12 else "")
    raise UsageError(f"--label {label!r}: not one of this model's classes ({shown}) or 'all'")


def generate(model: Any, z: torch.Tensor, labels: torch.Tensor | None, device: torch.device,
             chunk: int = 1) -> torch.Tensor:
    """Images in [0, 1] on the CPU, (N, C, H, W), ``chunk`` latents per forward pass.

    sample() passes one latent at a time: a batched matmul may round differently from a batch of one, and an
    image must be bit-identical wherever its latent appears (grid, interpolation end point, arithmetic term)."""
    model.eval()
    parts = []
    for start in range(0, z.shape[0], chunk):
        part_labels = None if labels is None else labels[start:start + chunk].to(device)
        parts.append(model.generate(z[start:start + chunk].to(device), part_labels).float().cpu())
    return torch.cat(parts)


def nearest(samples: torch.Tensor, pool: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (N, k) of the k images of ``pool`` nearest each sample in pixel L2, nearest first."""
    if k > pool.shape[0]:
        raise UsageError(f"--neighbours {k}: the training data has only {pool.shape[0]} images")
    return nearest_images(samples, pool, k)


def beside_neighbours(images: torch.Tensor, config: Any, k: int) -> tuple[torch.Tensor, int]:
    """Each sample followed by its k nearest training images: one row per sample."""
    return beside_pool(images, training_images(config.training_data, config).pixels, config.training_data, k)


def beside_pool(images: torch.Tensor, pixels: torch.Tensor, source: str, k: int) -> tuple[torch.Tensor, int]:
    """Each sample (in [0, 1]) followed by its k nearest images of ``pixels`` (uint8, from --data ``source``)."""
    pool = pixels.float() / 255.0  # (M, C, H, W) in [0, 1]
    if pool.shape[1:] != images.shape[1:]:
        raise UsageError(f"--neighbours: the training images ({source}) are "
                         f"{tuple(pool.shape[1:])}, the samples {tuple(images.shape[1:])}")
    index = nearest(images, pool, k)  # (N, k)
    rows = torch.cat([images[:, None], pool[index]], dim=1)  # (N, 1 + k, C, H, W)
    return rows.flatten(0, 1), 1 + k


def to_uint8(images: torch.Tensor) -> Any:
    """[0, 1] (N, C, H, W) -> uint8 numpy (N, H, W, C), as Images wants."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
