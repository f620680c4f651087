"""``gencli evaluate lapgan``: the same figures as dcgan's (gencli.metrics: the GAN paper's Parzen window, the
digit classifier's Frechet distance, label coverage and entropy, each beside its training-images reference),
plus for a class-conditional model how often the classifier names the asked class.

On the embedded digits the model makes 32x32 images of 28x28 digits padded with black; the figures are taken
on the central 28x28 window of each sample, so they use the very test images, kernel dimension and classifier
of dcgan's and can stand beside them.
"""

from __future__ import annotations

from typing import Any

import torch

from gencli.data.images import ImageSet, is_embedded
from gencli.errors import UsageError
from gencli.metrics.digits import classifier_for, digit_figures, embed, labelled, unit
from gencli.metrics.parzen import parzen_figures
from gencli.plugin import EvalRequest
from gencli_gan.lapgan.model import MNIST_SIDE, level_sides
from gencli_gan.lapgan.sampling import codes_for, generate
from gencli_gan.evaluation import reference_kernels
from gencli_gan.training import embedded, held_out_images, training_images

GRID_COLUMNS = 10  # `gencli sample lapgan --label all`: 10 samples per class row


def scoring_images(source: str | None, config: Any) -> tuple[ImageSet, ImageSet, ImageSet, int, int]:
    """(train, valid, test, offset, side): the images the samples are scored against, and the window
    [offset, offset + side) of each sample's rows and columns that is compared with them."""
    if is_embedded(source) and config.image_size >= MNIST_SIDE:
        train, valid, test = (embedded(split, MNIST_SIDE) for split in ("train", "valid", "test"))
        return train, valid, test, (config.image_size - MNIST_SIDE) // 2, MNIST_SIDE
    valid, test = held_out_images(source, config)
    return training_images(source, config), valid, test, 0, config.image_size


def evaluate(model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    source = request.data or config.training_data
    train, valid, test, offset, side = scoring_images(source, config)
    if train.shape != (config.channels, side, side):
        raise UsageError(f"--data {source}: images are {train.shape}, the model makes "
                         f"{(config.channels, config.image_size, config.image_size)}")
    window = (slice(None), slice(None), slice(offset, offset + side), slice(offset, offset + side))
    kernels = reference_kernels(train)
    request.describe_data(f"{test.description}; Parzen sigma chosen on {valid.description}; training-image "
                          f"reference: {kernels.pixels.shape[0]:,} of {train.description}")
    samples, asked = draw(model, config, options.samples, request)
    samples = samples[window]  # (N, C, side, side) in [0, 1]
    figures = parzen_figures(samples, unit(kernels.pixels), unit(valid.pixels), unit(test.pixels))
    if labelled(train) and labelled(test):
        figures |= digit_figures(train, test, samples, asked)
        if config.num_classes == len(train.classes):
            figures["label_all_grid_accuracy"] = grid_accuracy(model, config, train, window, request)
    return figures


def draw(model: Any, config: Any, n: int, request: EvalRequest) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n full-size samples in [0, 1] from one seeded generator; a conditional model gets labels i mod K."""
    generator = torch.Generator().manual_seed(request.seed)
    z = torch.randn(n, config.z_dim, generator=generator)
    noises = [torch.randn(n, 1, s, s, generator=generator) for s in level_sides(config)[1:]]
    labels = torch.arange(n) % config.num_classes if config.num_classes else None
    return generate(model, z, noises, labels, request.device, chunk=1000)[-1], labels


def grid_accuracy(model: Any, config: Any, train: ImageSet, window: tuple, request: EvalRequest) -> float:
    """The share of the ``sample lapgan --label all --seed SEED`` grid (10 per class, column j from seed
    SEED + j) that the digit classifier assigns to the row's class."""
    seeds = [request.seed + column for column in range(GRID_COLUMNS)] * config.num_classes
    asked = torch.arange(config.num_classes).repeat_interleave(GRID_COLUMNS)
    z, noises = codes_for(seeds, config)
    images = generate(model, z, noises, asked, request.device)[-1][window]
    _, predicted = embed(classifier_for(train), images)
    return float((predicted == asked).double().mean())
