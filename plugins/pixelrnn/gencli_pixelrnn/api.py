"""The plugin's implementation half: data, loss, sampling (and completion) and exact evaluation."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from gencli.data.images import (EMBEDDED, ImageBatches, ImageSet, data_split, fixed_binarization, has_fixed_splits,
                                load_image)
from gencli.errors import UsageError
from gencli.plugin import EvalRequest, Images, Prepared, SampleRequest, no_description
from gencli_pixelrnn.model import PixelRNN, bits_per_dim, check_config, nll_from_logits
from gencli_pixelrnn.sampling import generate

HOLDOUT_SEED = 0  # --data folders: the same 10% is held out at training and evaluation time


def _split(data: str | None, config: Any, split: str) -> ImageSet:
    """The training or test images for ``data``, at the config's size (and channels, once known)."""
    return data_split(data, "train" if split == "train" else "test", config.image_size, config.channels or None,
                      seed=HOLDOUT_SEED)


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    config.channels = 0  # learned from the data below
    images = _split(data, config, "train")
    config.channels = images.shape[0]
    if config.levels == 0:  # auto: MNIST and the other named sets are binarized, like the paper's MNIST
        config.levels = 2 if has_fixed_splits(data) else 256
    config.training_data = data or EMBEDDED  # what `gencli evaluate` scores when --data is not given
    check_config(config)
    binary = config.levels == 2
    return Prepared(config, PixelBatches(images, binary=binary),
                    images.description + (", stochastically binarized" if binary else ""))


class PixelBatches(ImageBatches):
    """The shared image batches reduced to what the model scores: values (B, C, H, W), 0/1 freshly binarized
    for a binary model, 0..255 otherwise (a plain tensor, so batches compare and shard simply)."""

    def batch(self, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        drawn = super().batch(generator, batch_size)
        return drawn["binary"] if self.binary else drawn["pixels"].float()


def build(config: Any) -> PixelRNN:
    return PixelRNN(config)


def loss(model: PixelRNN, values: torch.Tensor, options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    inner = getattr(model, "module", model)  # under DistributedDataParallel: call the wrapper, read the inner
    nats = nll_from_logits(model(inner.encode(values)), values, inner.levels)  # (B,)
    dims = values[0].numel()
    per_dim = nats.mean() / dims  # a per-dimension loss keeps the learning rate independent of image size
    image_nats = float(nats.detach().mean())
    return per_dim, {"nats_per_image": image_nats, "bits_per_dim": bits_per_dim(image_nats, dims)}


# ---- sampling and completion ------------------------------------------------------------------------------------


def sample(model: PixelRNN, config: Any, options: Any, request: SampleRequest) -> Images:
    if not options.temperature > 0:
        raise UsageError("--temperature must be positive")
    size = config.image_size
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    if options.complete:
        if not 0 <= options.keep_rows <= size:
            raise UsageError(f"--keep-rows {options.keep_rows}: must be between 0 and the image size {size}")
        if options.completions < 1:
            raise UsageError("--completions must be at least 1")
        originals = torch.stack([_given_image(path, config) for path in options.complete])  # (N, C, H, W)
        values = originals.repeat_interleave(options.completions, dim=0).to(request.device)
        keep = options.keep_rows
    else:
        if request.n < 1:
            raise UsageError("-n must be at least 1")
        values, keep = torch.zeros(request.n, config.channels, size, size, device=request.device), 0
    with torch.inference_mode():
        filled = generate(model, values, keep_rows=keep, temperature=options.temperature, generator=generator,
                          stepper=options.sampler, progress=request.progress)
    if not options.complete:
        return Images(_to_uint8(filled, config))
    # One grid row per given image: the image as the model sees it, then its completions.
    rows = []
    for index, original in enumerate(originals):
        rows.append(original[None].to(filled.device))
        rows.append(filled[index * options.completions:(index + 1) * options.completions])
    return Images(_to_uint8(torch.cat(rows), config), columns=1 + options.completions)


def _given_image(path: Any, config: Any) -> torch.Tensor:
    """A --complete image at the model's size and channels; binary models see it thresholded at half."""
    pixels = load_image(path, config.image_size, config.channels).float()  # (C, H, W), 0..255
    return (pixels >= 128).float() if config.levels == 2 else pixels


def _to_uint8(values: torch.Tensor, config: Any) -> np.ndarray:
    scale = 255.0 if config.levels == 2 else 1.0
    return (values * scale).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# ---- evaluation ----------------------------------------------------------------------------------------------------


def held_out_values(data: str | None, config: Any, describe: Callable[[str], None] = no_description) -> torch.Tensor:
    """The held-out images as the model scores them: 0/1 with the split's one fixed binarization, or 0..255
    (``describe`` is told which images)."""
    images = _split(data, config, "test")
    describe(images.description + (", binarized once with a fixed seed" if config.levels == 2 else ""))
    return fixed_binarization(images, "test") if config.levels == 2 else images.pixels.float()


def evaluate(model: PixelRNN, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    if options.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    values = held_out_values(request.data or config.training_data, config, request.describe_data)
    if options.max_images > 0:
        values = values[:options.max_images]
        request.describe_data(f"the first {len(values):,} of them")
    total = 0.0
    for start in range(0, len(values), options.batch_size):
        total += float(model.nll(values[start:start + options.batch_size].to(request.device)).double().sum())
    nats = total / len(values)
    dims = values[0].numel()
    return {"nll_nats_per_image": nats, "bits_per_dim": bits_per_dim(nats, dims),
            "nll_nats_per_dim": nats / dims, "test_images": len(values)}
