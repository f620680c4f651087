"""The LAPGAN model (all levels' players in one module), its data, and the training step.

All levels train jointly, one step of each per engine step, each on REAL pyramids as in the paper: the coarsest
pair learns the coarsest image I_K; the pair at a finer level k learns the band-pass image h_k = I_k - u(I_{k+1})
given the real low-pass image l_k = u(I_{k+1}). Only sampling chains the levels: each generator refines the
image its coarser neighbour generated. Every level's step is gencli_gan.training's ``adversarial_losses`` (one
scalar, simultaneous updates, optional R1 on the real band), and the step's scalar is their sum.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from gencli.data.images import EMBEDDED, ImageSet, data_split, is_embedded, load_images
from gencli.errors import UsageError
from gencli.messages import note
from gencli.metrics.digits import labelled
from gencli.plugin import Prepared
from gencli_gan.lapgan.networks import RefinementDiscriminator, RefinementGenerator, coarse_pair
from gencli_gan.lapgan.pyramid import gaussian_pyramid, laplacian_pyramid, upsample
from gencli_gan.training import HOLDOUT_FRACTION, adversarial_losses, diversity, player_metrics

MNIST_SIDE = 28


def add_class_losses(out: dict[str, torch.Tensor], discriminator: nn.Module, real: torch.Tensor,
                     fake: torch.Tensor, conditions: tuple, labels: torch.Tensor, weight: float) -> None:
    """AC-GAN's auxiliary classifier (Odena et al. 2017), added to one level's ``adversarial_losses`` output:
    D's class head learns the classes of the REAL images only (on fakes it would also learn to name bad ones),
    and G is scored by that head, held fixed, on its fakes of the asked class. The same gradient routing as
    ``adversarial_losses``: d_loss reaches D only, g_loss G only."""
    real_class = discriminator(real.detach(), *conditions, labels, classify=True)  # (B, K)
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    fake_class = functional_call(discriminator, frozen, (fake, *conditions, labels), {"classify": True})  # (B, K)
    out["d_loss"] = out["d_loss"] + weight * F.cross_entropy(real_class, labels)
    out["g_loss"] = out["g_loss"] + weight * F.cross_entropy(fake_class, labels)
    out["d_class_acc"] = (real_class.argmax(1) == labels).float().mean().detach()  # D's head on real images
    out["g_class_acc"] = (fake_class.argmax(1) == labels).float().mean().detach()  # ... on the fakes


def level_sides(config: Any) -> list[int]:
    """Image side at each level, coarsest first: [8, 16, 32] for 32x32 images and 3 levels."""
    return [config.image_size >> k for k in reversed(range(config.pyramid_levels))]


def check_shape(config: Any) -> None:
    coarse = config.image_size >> (config.pyramid_levels - 1)
    if coarse << (config.pyramid_levels - 1) != config.image_size or coarse < 4:
        raise UsageError(f"--image-size {config.image_size} with --pyramid-levels {config.pyramid_levels}: the "
                         "image side must halve evenly down to a coarsest side of at least 4 "
                         "(e.g. 32 with 3 levels: 8 -> 16 -> 32)")


class LaplacianGAN(nn.Module):
    """``generator`` and ``discriminator`` are the two players, each a list of one network per level, coarsest
    first (so gencli_gan's optimizer groups and tests see the same two players as in the other GANs)."""

    pixel_range = "tanh"

    def __init__(self, config: Any) -> None:
        super().__init__()
        check_shape(config)
        self.sides = level_sides(config)
        self.z_dim, self.num_classes = config.z_dim, config.num_classes
        coarse_generator, coarse_discriminator = coarse_pair(config, self.sides[0])
        shape = {"channels": config.channels, "width": config.fine_channels, "num_classes": config.num_classes}
        self.generator = nn.ModuleList(
            [coarse_generator] + [RefinementGenerator(side=side, **shape) for side in self.sides[1:]])
        self.discriminator = nn.ModuleList(
            [coarse_discriminator] + [RefinementDiscriminator(side=side, **shape) for side in self.sides[1:]])

    def forward(self, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor, noises: tuple[torch.Tensor, ...],
                real_target: float = 1.0, r1: float = 0.0, class_loss: float = 0.0) -> list[dict[str, torch.Tensor]]:
        """Each level's ``adversarial_losses`` on the real pyramid of ``real`` (uint8 (B, C, H, W)), coarsest
        first; with ``class_loss`` > 0 (a class-conditional model) plus that weight times AC-GAN's class losses."""
        auxiliary = class_loss > 0 and self.num_classes > 0
        levels = len(self.sides)
        images = real.float() / 127.5 - 1.0  # (B, C, H, W) in [-1, 1]
        gaussian = gaussian_pyramid(images, levels)[::-1]  # [I_K (coarsest), ..., I_0], coarsest first
        bands = laplacian_pyramid(images, levels)[::-1]  # [I_K, h_{K-1}, ..., h_0]
        fake = self.generator[0](z, labels)  # (B, C, s, s) at the coarsest level
        outs = [adversarial_losses(self.discriminator[0], bands[0], fake, (labels,), real_target, r1)]
        if auxiliary:
            add_class_losses(outs[0], self.discriminator[0], bands[0], fake, (), labels, class_loss)
        outs[0] |= {"real_unit": (bands[0] + 1) / 2, "fake_unit": (fake.detach() + 1) / 2}
        for level in range(1, levels):
            low = upsample(gaussian[level - 1])  # (B, C, s, s): the real low-pass image this level refines
            fake_band = self.generator[level](low, noises[level - 1], labels)  # (B, C, s, s)
            outs.append(adversarial_losses(self.discriminator[level], bands[level], fake_band, (low, labels),
                                           real_target, r1))
            if auxiliary:
                add_class_losses(outs[-1], self.discriminator[level], bands[level], fake_band, (low,), labels,
                                 class_loss)
        return outs

    @torch.no_grad()
    def generate(self, z: torch.Tensor, noises: tuple[torch.Tensor, ...],
                 labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every level of the sampled pyramids in [0, 1], coarsest first: [(B, C, 8, 8), (B, C, 16, 16), ...].
        Call in eval mode, so each image depends on its own codes only."""
        if self.num_classes and labels is None:
            raise ValueError("a class-conditional LAPGAN needs labels")
        image = self.generator[0](z, labels)  # (B, C, s, s) in [-1, 1]
        levels = [image]
        for generator, noise in zip(self.generator[1:], noises):
            low = upsample(image)  # (B, C, 2s, 2s)
            # Clamped to the pixel range, as real images are, before the next level takes it as its condition.
            image = (low + generator(low, noise, labels)).clamp(-1.0, 1.0)
            levels.append(image)
        return [((level + 1.0) / 2.0).clamp(0.0, 1.0) for level in levels]


def build(config: Any) -> LaplacianGAN:
    return LaplacianGAN(config)


def loss(model: nn.Module, batch: tuple[torch.Tensor, ...], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    real, labels, z, *noises = batch
    if real.shape[0] < 2:  # batch normalisation has no statistics for one image
        raise UsageError(f"--batch-size {real.shape[0]}: lapgan's batch normalisation needs at least 2 images a "
                         "step (in each process, with --nproc)")
    outs = model(real, labels, z, tuple(noises), getattr(options, "real_label", 1.0), getattr(options, "r1", 0.0),
                 getattr(options, "class_loss", 0.0))
    total = sum(out["d_loss"] + out["g_loss"] for out in outs)
    with torch.no_grad():
        metrics = {"d_loss": float(sum(out["d_loss"] for out in outs)),
                   "g_loss": float(sum(out["g_loss"] for out in outs))}
        for side, out in zip(model.sides, outs):
            metrics |= player_metrics(out, suffix=f"_{side}")
            metrics |= {f"{k}_{side}": float(out[k]) for k in ("d_class_acc", "g_class_acc") if k in out}
        # At the coarsest level a collapsed generator shows as fake_diversity far below real_diversity.
        metrics |= {"fake_diversity": diversity(outs[0]["fake_unit"]),
                    "real_diversity": diversity(outs[0]["real_unit"])}
    return total, metrics


# ---- data --------------------------------------------------------------------------------------------------


class PyramidBatches:
    """The engine's TrainData: (pixels uint8 (B, C, H, W), labels (B,), z (B, z_dim), then one noise plane
    (B, 1, s, s) per refinement level, coarsest first), all from the generator the engine seeds."""

    def __init__(self, images: ImageSet, z_dim: int, sides: list[int]) -> None:
        self.images, self.z_dim, self.sides = images, z_dim, sides

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        rows = torch.randint(0, self.images.pixels.shape[0], (batch_size,), generator=generator)
        z = torch.randn(batch_size, self.z_dim, generator=generator)
        noises = [torch.randn(batch_size, 1, side, side, generator=generator) for side in self.sides[1:]]
        return (self.images.pixels[rows], self.images.labels[rows], z, *noises)


@functools.cache
def embedded_digits(split: str, size: int) -> ImageSet:
    """The embedded digits at ``size``: padded with black borders when larger than 28 (as the LAPGAN paper
    and LeNet did for 32x32), resized when smaller."""
    if size < MNIST_SIDE:
        return load_images(None, size, 1, split=split)  # type: ignore[arg-type]
    digits = load_images(None, MNIST_SIDE, 1, split=split)  # type: ignore[arg-type]
    before = (size - MNIST_SIDE) // 2
    after = size - MNIST_SIDE - before
    pixels = F.pad(digits.pixels, (before, after, before, after))  # (N, 1, size, size), zeros around
    return ImageSet(pixels, digits.labels, digits.classes, digits.description + f", padded to {size}x{size}")


def training_images(source: str | None, config: Any) -> ImageSet:
    if is_embedded(source):
        return embedded_digits("train", config.image_size)
    return data_split(source, "train", config.image_size, fraction=HOLDOUT_FRACTION)


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    check_shape(config)
    images = training_images(data, config)
    conditional = config.conditional and labelled(images)
    if config.conditional and not conditional:
        note(f"--data {data}: no class labels (sub-folders) on every image, so the LAPGAN is unconditional")
    classes = list(images.classes) if conditional else []
    config = dataclasses.replace(config, channels=images.shape[0], training_data=data or EMBEDDED,
                                 num_classes=len(classes), classes=classes)
    return Prepared(config, PyramidBatches(images, config.z_dim, level_sides(config)), images.description)
