"""`gencli sample vae`: prior samples, reconstructions, latent interpolations and latent traversals.

Every picture shows the decoder's mean (Bernoulli probabilities or logistic locations) unless --draw asks for
random draws from p(x|z): the mean is what the model "thinks", the draws add per-pixel noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gencli.data.images import binarize, load_image
from gencli.errors import UsageError
from gencli.plugin import Images, SampleRequest

from gencli_vae import likelihoods


def sample(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    _check(options)
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    if options.reconstruct:
        return reconstructions(model, config, options, generator)
    if options.interpolate or options.interpolate_prior:
        return interpolation(model, config, options, request.n, generator)
    if options.traverse:
        return traversal(model, config, options, generator)
    z = torch.randn(request.n, model.latent_size, generator=generator, device=request.device)
    if options.canvases:
        if config.arch != "draw":
            raise UsageError("--canvases shows DRAW's glimpse-by-glimpse drawing: it needs a model with --arch draw")
        frames = torch.stack([torch.sigmoid(canvas) for canvas in model.canvases(z)], dim=1)  # (N, T, 1, H, W)
        return Images(to_pixels(frames.flatten(0, 1)), columns=frames.shape[1])
    return Images(to_pixels(_show(model, model.decode(z), options, generator)))


def _check(options: Any) -> None:
    chosen = [name for name, on in (("--reconstruct", bool(options.reconstruct)),
                                     ("--interpolate", bool(options.interpolate)),
                                     ("--interpolate-prior", options.interpolate_prior),
                                     ("--traverse", options.traverse)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one of --reconstruct, --interpolate, --interpolate-prior and --traverse "
                         f"(got {' and '.join(chosen)})")
    if options.interpolate and len(options.interpolate) != 2:
        raise UsageError(f"--interpolate takes exactly two images (--interpolate a.png --interpolate b.png), "
                         f"got {len(options.interpolate)}")
    if options.around is not None and not options.traverse:
        raise UsageError("--around goes with --traverse")
    if options.steps < 2:
        raise UsageError("--steps must be at least 2 (the two ends)")
    if options.dims < 0:
        raise UsageError("--dims must be 0 (every dimension) or more")
    if not options.span > 0:
        raise UsageError("--span must be positive")


# ---- the modes --------------------------------------------------------------------------------------------------


def reconstructions(model: Any, config: Any, options: Any, generator: torch.Generator) -> Images:
    """One row per input: the image as the model reads it (binarized for a Bernoulli model), then its
    reconstruction (the decoder's mean at the encoder's mean)."""
    x = encode_inputs(model, config, options.reconstruct, generator)
    shown = _as_image(model, x)
    mean, _ = model.posterior(x)
    rebuilt = _show(model, model.decode(mean), options, generator)
    pairs = torch.stack([shown, rebuilt], dim=1).flatten(0, 1)  # (2N, C, H, W): input, reconstruction, ...
    return Images(to_pixels(pairs), columns=2)


def interpolation(model: Any, config: Any, options: Any, n: int, generator: torch.Generator) -> Images:
    """Frames decoded along the straight line between two codes, ``--steps`` frames a row, ends included.

    With two images, the codes are their encoder means and the end frames are exactly their reconstructions
    (decoded in one batch by the same path as --reconstruct, so batch-size rounding cannot differ). Without,
    each of the -n rows walks between two seeded draws from the prior.
    """
    device = next(model.parameters()).device
    if options.interpolate:
        x = encode_inputs(model, config, options.interpolate, generator)
        ends, _ = model.posterior(x)  # (2, Z)
        start, end = ends[:1], ends[1:]
    else:
        start = torch.randn(n, model.latent_size, generator=generator, device=device)
        end = torch.randn(n, model.latent_size, generator=generator, device=device)
    rows = start.shape[0]
    t = torch.linspace(0.0, 1.0, options.steps, device=device)[None, :, None]  # (1, S, 1)
    walk = (1 - t) * start[:, None] + t * end[:, None]  # (R, S, Z)
    inner = _show(model, model.decode(walk[:, 1:-1].flatten(0, 1)), options, generator)
    first_last = _show(model, model.decode(torch.cat([start, end])), options, generator)  # (2R, C, H, W)
    frames = torch.cat([first_last[:rows, None], inner.view(rows, options.steps - 2, *inner.shape[1:]),
                        first_last[rows:, None]], dim=1)  # (R, S, C, H, W)
    return Images(to_pixels(frames.flatten(0, 1)), columns=options.steps)


def traversal(model: Any, config: Any, options: Any, generator: torch.Generator) -> Images:
    """One row per latent dimension, the most used ones first (by their running mean KL in training): the
    dimension runs from -span to +span around the point while the others stay put."""
    device = next(model.parameters()).device
    if options.around is not None:
        point, _ = model.posterior(encode_inputs(model, config, [options.around], generator))
        point = point[0]
    else:
        point = torch.zeros(model.latent_size, device=device)  # the prior's mean
    order = torch.argsort(model.kl_per_dim, descending=True, stable=True)
    dims = order[: options.dims or model.latent_size]
    offsets = torch.linspace(-options.span, options.span, options.steps, device=device)  # (S,)
    z = point.repeat(len(dims), options.steps, 1)  # (D, S, Z)
    z[torch.arange(len(dims)), :, dims] += offsets
    images = _show(model, model.decode(z.flatten(0, 1)), options, generator)
    return Images(to_pixels(images), columns=options.steps)


# ---- helpers -------------------------------------------------------------------------------------------------------


def encode_inputs(model: Any, config: Any, paths: list[Path], generator: torch.Generator) -> torch.Tensor:
    """Image files -> model space (N, C, H, W); a Bernoulli model reads a seeded binarization of them."""
    device = next(model.parameters()).device
    pixels = torch.stack([load_image(path, config.image_size, config.channels or 1) for path in paths])
    binary = binarize(pixels, generator) if model.likelihood == "bernoulli" else None
    return likelihoods.to_model_space(pixels, model.likelihood, binary).to(device)


def _as_image(model: Any, x: torch.Tensor) -> torch.Tensor:
    """Model space -> [0, 1]."""
    return x if model.likelihood == "bernoulli" else (x + 1.0) / 2.0


def _show(model: Any, params: torch.Tensor, options: Any, generator: torch.Generator) -> torch.Tensor:
    if options.draw:
        return likelihoods.draw(model.likelihood, params, generator)
    return likelihoods.mean(model.likelihood, params)


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """[0, 1] floats (N, C, H, W) -> uint8 (N, H, W, C) for the writer."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
