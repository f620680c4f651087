"""The model (both players in one module), the data, and the one training step all three GANs share.

The engine runs one ``loss`` per step followed by one backward pass and one optimizer step, so a GAN step is
written as ONE scalar whose gradient is, for each player, the gradient of that player's own loss:

    L = L_D(theta_D; fakes detached) + L_G(theta_G; D's parameters detached)

``fake.detach()`` stops L_D reaching the generator, and evaluating D with detached copies of its parameters
(``torch.func.functional_call``) stops L_G reaching the discriminator. Both players therefore move
simultaneously from the same state, as in the paper's Algorithm 1 with k = 1.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from gencli.data.images import EMBEDDED, ImageSet, data_split, has_fixed_splits, load_images
from gencli.errors import UsageError
from gencli.plugin import Prepared
from gencli_gan.networks import ConvDiscriminator, ConvGenerator, MLPDiscriminator, MLPGenerator

HOLDOUT_FRACTION = 0.2  # of a user's folder: held out for evaluation (halved into validation and test)


class GANPair(nn.Module):
    """Generator and discriminator; ``forward`` is the training objective (so DDP and torch.compile see it)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        if hasattr(config, "g_hidden"):
            self.generator, self.discriminator = MLPGenerator(config), MLPDiscriminator(config)
            self.num_classes = 0
        else:
            if config.image_size % 4:
                raise UsageError(f"image_size {config.image_size} must be a multiple of 4 (two stride-2 layers)")
            self.num_classes = getattr(config, "num_classes", 0)
            self.generator = ConvGenerator(config, self.num_classes)
            self.discriminator = ConvDiscriminator(config, self.num_classes)
        self.z_dim = config.z_dim
        self.pixel_range = self.generator.pixel_range

    # -- pixel ranges --

    def from_uint8(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the generator's range ([0, 1] for sigmoid, [-1, 1] for tanh)."""
        unit = pixels.float() / 255.0
        return unit if self.pixel_range == "sigmoid" else unit * 2.0 - 1.0

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """The generator's range -> [0, 1]."""
        return images if self.pixel_range == "sigmoid" else (images + 1.0) / 2.0

    # -- the step --

    def forward(self, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor,
                real_target: float = 1.0, r1: float = 0.0) -> dict[str, torch.Tensor]:
        real = self.from_uint8(real)  # (B, C, H, W)
        fake = self.generator(z, labels)  # (B, C, H, W)
        out = adversarial_losses(self.discriminator, real, fake, (labels,), real_target, r1)
        return out | {"real_unit": self.to_unit(real.detach()), "fake_unit": self.to_unit(fake.detach())}

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1], (B, C, H, W); call in eval mode so each image depends on its own z only."""
        if self.num_classes and labels is None:
            raise ValueError("a conditional generator needs labels")
        return self.to_unit(self.generator(z, labels)).clamp(0.0, 1.0)


def adversarial_losses(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, conditions: tuple,
                       real_target: float = 1.0, r1: float = 0.0) -> dict[str, torch.Tensor]:
    """Both players' losses for one discriminator called as ``discriminator(images, *conditions)``.

    d_loss reaches D only (fakes detached) and g_loss reaches G only (D's parameters detached), so their sum
    has one backward pass give each player its own gradient. ``r1`` adds gamma / 2 times D's squared input
    gradient at the real images (Mescheder et al. 2018), taken with respect to ``real`` alone, not the
    conditions. Shared by the gan/dcgan/cgan pairs and every level of lapgan."""
    real = real.detach().requires_grad_(r1 > 0)  # (B, ...): a leaf, so R1 can differentiate D with respect to it
    real_logits = discriminator(real, *conditions)  # (B,)
    fake_logits = discriminator(fake.detach(), *conditions)  # (B,): no gradient reaches G through L_D
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    if r1 > 0:
        (slope,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        d_loss = d_loss + r1 / 2 * slope.square().flatten(1).sum(1).mean()
    # D with its parameters held fixed (buffers such as batch-norm statistics still come from the module).
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    g_logits = functional_call(discriminator, frozen, (fake, *conditions))  # (B,)
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))  # -log D(G(z))
    return {"d_loss": d_loss, "g_loss": g_loss, "real_logits": real_logits.detach(),
            "fake_logits": fake_logits.detach()}


def build(config: Any) -> GANPair:
    return GANPair(config)


def configure_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with beta1 0.5 (Radford et al.: 0.9 oscillates); one group per player. The engine sets every
    group's lr from its schedule each step, so both players share the lr."""
    return torch.optim.Adam([{"params": model.generator.parameters()},
                             {"params": model.discriminator.parameters()}], lr=lr, betas=(0.5, 0.999))


def loss(model: nn.Module, batch: tuple[torch.Tensor, ...], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    real, labels, z = batch
    if real.shape[0] < 2:  # batch normalisation has no statistics for one image: torch raised a bare ValueError
        raise UsageError(f"--batch-size {real.shape[0]}: the GANs' batch normalisation needs at least 2 images a "
                         "step (in each process, with --nproc)")
    out = model(real, labels, z, getattr(options, "real_label", 1.0), getattr(options, "r1", 0.0))
    with torch.no_grad():
        metrics = player_metrics(out) | {
            # Mean pairwise RMS pixel distance in [0, 1]: falls far below real_diversity under mode collapse.
            "fake_diversity": diversity(out["fake_unit"]),
            "real_diversity": diversity(out["real_unit"]),
        }
    return out["d_loss"] + out["g_loss"], metrics


def player_metrics(out: dict[str, torch.Tensor], suffix: str = "") -> dict[str, float]:
    """The players' losses and the discriminator's accuracies from ``adversarial_losses``' output."""
    return {
        f"d_loss{suffix}": float(out["d_loss"]),
        f"g_loss{suffix}": float(out["g_loss"]),
        f"d_real_acc{suffix}": float((out["real_logits"] > 0).float().mean()),  # D calls real images real
        f"d_fake_acc{suffix}": float((out["fake_logits"] < 0).float().mean()),  # D calls fakes fake
    }


def diversity(images: torch.Tensor) -> float:
    """Mean pairwise distance between images, per pixel (RMS), in the units of ``images``."""
    flat = images.flatten(1).float()
    if flat.shape[0] < 2:
        return 0.0
    return float(torch.pdist(flat).mean() / flat.shape[1] ** 0.5)


# ---- data --------------------------------------------------------------------------------------------------


class LatentBatches:
    """The engine's TrainData: (pixels uint8 (B, C, H, W), labels (B,), z (B, z_dim)), all drawn from the
    generator the engine seeds from (run seed, step), so a resumed run sees the very same latents."""

    def __init__(self, images: ImageSet, z_dim: int) -> None:
        self.images, self.z_dim = images, z_dim

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        rows = torch.randint(0, self.images.pixels.shape[0], (batch_size,), generator=generator)
        z = torch.randn(batch_size, self.z_dim, generator=generator)
        return self.images.pixels[rows], self.images.labels[rows], z


@functools.cache
def embedded(split: str, size: int) -> ImageSet:
    """One split of the embedded digits, parsed once per process (evaluation reads all three)."""
    return load_images(None, size, 1, split=split)  # type: ignore[arg-type]


def training_images(source: str | None, config: Any) -> ImageSet:
    """The images a model trains on: the embedded train split, or a folder minus its held-out part."""
    return data_split(source, "train", config.image_size, fraction=HOLDOUT_FRACTION)


def held_out_images(source: str | None, config: Any) -> tuple[ImageSet, ImageSet]:
    """(validation, test): a data set's own splits (the embedded digits, ``mnist``: its last 10,000 training
    images and the published 10,000 test images, an IDX folder), or a folder's held-out part cut in two halves."""
    if source is None or source == EMBEDDED:
        return embedded("valid", config.image_size), embedded("test", config.image_size)
    if has_fixed_splits(source):
        return (data_split(source, "valid", config.image_size, config.channels),
                data_split(source, "test", config.image_size, config.channels))
    held = data_split(source, "test", config.image_size, config.channels, fraction=HOLDOUT_FRACTION)
    n = held.pixels.shape[0]
    if n < 2:
        return held, held
    half = n // 2
    pick = lambda rows: ImageSet(held.pixels[rows], held.labels[rows], held.classes, held.description)  # noqa: E731
    return pick(slice(0, half)), pick(slice(half, n))


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    images = training_images(data, config)
    changes: dict[str, Any] = {"channels": images.shape[0], "training_data": data or EMBEDDED}
    if hasattr(config, "num_classes"):
        if not images.classes or bool((images.labels < 0).any()):
            raise UsageError(f"cgan needs labelled images: put each class's images in a sub-folder of {data} "
                             "(the sub-folder name is the label)")
        changes.update(num_classes=len(images.classes), classes=list(images.classes))
    config = dataclasses.replace(config, **changes)
    return Prepared(config, LatentBatches(images, config.z_dim), images.description)
