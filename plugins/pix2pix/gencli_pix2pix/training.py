"""The model (generator and discriminator in one module), its data, and the training step.

The engine runs one ``loss``, one backward pass and one optimizer step, so the step is ONE scalar whose gradient
is, for each player, the gradient of that player's own objective (Isola et al., eq. 4 and section 3.3):

    L = 1/2 L_D(D; translations detached) + L_cGAN(G; D's parameters detached) + lambda * L1(G)

Detaching the translation stops L_D reaching G; calling D with detached copies of its parameters
(``torch.func.functional_call``) stops G's loss reaching D. The discriminator's objective is halved, as in the
paper, "which slows down the rate at which D learns relative to G". The generator loss is the non-saturating
-log D(A, G(A)). With ``--l1-only`` the step is lambda * L1 alone and D receives no gradient.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from gencli.errors import UsageError
from gencli.plugin import Prepared
from gencli_pix2pix import embedded
from gencli_pix2pix.folders import folder_pairs
from gencli_pix2pix.networks import PatchGAN, UNet, patch_layers_for, receptive_field
from gencli_pix2pix.pairs import PairBatches, Pairs

NATURAL_SIZE = {embedded.EDGES2DIGITS: 32, embedded.GREY2COLOUR: 64}
FOLDER_SIZE = 256  # the paper's


def to_signed(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the generator's tanh range."""
    return pixels.float() / 127.5 - 1.0


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)


class Pix2PixPair(nn.Module):
    """Generator and discriminator; ``forward`` is the training objective (so DDP and torch.compile see it)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        depth = config.depth or halvings(config.image_size)
        self.generator = UNet(in_channels=config.in_channels, out_channels=config.out_channels, depth=depth,
                              base_channels=config.base_channels, max_channels=config.max_channels,
                              dropout_layers=config.dropout_layers)
        self.discriminator = PatchGAN(in_channels=config.in_channels, out_channels=config.out_channels,
                                      base_channels=config.d_base_channels,
                                      stride_two_layers=config.d_layers or patch_layers_for(config.image_size))

    def forward(self, a: torch.Tensor, b: torch.Tensor, l1_weight: float, l1_only: bool) -> dict[str, torch.Tensor]:
        condition, target = to_signed(a), to_signed(b)  # (B, Ca, H, W), (B, Cb, H, W)
        fake = self.generator(condition)  # (B, Cb, H, W)
        l1 = (fake - target).abs().mean()
        out = {"l1": l1, "fake": fake.detach()}
        if l1_only:
            out["loss"] = l1_weight * l1
            return out
        discriminator = self.discriminator
        real_logits = discriminator(condition, target)  # (B, 1, h, w): one per patch
        fake_logits = discriminator(condition, fake.detach())  # no gradient reaches G through L_D
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
        g_logits = functional_call(discriminator, frozen, (condition, fake))  # (B, 1, h, w)
        g_gan = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))  # -log D(A, G(A))
        out.update(loss=d_loss + g_gan + l1_weight * l1, d_loss=d_loss, g_gan=g_gan,
                   real_logits=real_logits.detach(), fake_logits=fake_logits.detach())
        return out

    @torch.no_grad()
    def translate(self, a: torch.Tensor) -> torch.Tensor:
        """uint8 inputs (B, Ca, H, W) -> outputs in [0, 1] (B, Cb, H, W), dropout on (the paper's test-time noise)."""
        return to_unit(self.generator(to_signed(a)))


def halvings(size: int) -> int:
    """How many times ``size`` halves evenly: the U-Net depth that reaches the smallest whole bottleneck."""
    depth = 0
    while size % 2 == 0 and size > 1:
        size //= 2
        depth += 1
    return depth


def build(config: Any) -> Pix2PixPair:
    return Pix2PixPair(config)


def configure_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with beta1 0.5 (the paper's); one group per player, both at the engine's lr."""
    return torch.optim.Adam([{"params": model.generator.parameters()},
                             {"params": model.discriminator.parameters()}], lr=lr, betas=(0.5, 0.999))


def loss(model: nn.Module, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    out = model(batch["a"], batch["b"], options.l1_weight, options.l1_only)
    with torch.no_grad():
        metrics = {"l1": float(out["l1"])}  # mean absolute error in [-1, 1] units (half of it in [0, 1] units)
        if "d_loss" in out:
            metrics |= {"d_loss": float(out["d_loss"]), "g_gan": float(out["g_gan"]),
                        "d_real_acc": float((out["real_logits"] > 0).float().mean()),  # patches D calls real
                        "d_fake_acc": float((out["fake_logits"] < 0).float().mean())}
    return out["loss"], metrics


# ---- data --------------------------------------------------------------------------------------------------


def natural_size(source: str) -> int:
    return NATURAL_SIZE.get(source, FOLDER_SIZE)


def finished_config(config: Any, source: str, options: Any) -> Any:
    """The config with its automatic values settled: size, depth and patch layers; checked for consistency."""
    size = config.image_size or natural_size(source)
    depth = config.depth or halvings(size)
    if depth < 1:
        raise UsageError(f"--image-size {size}: the U-Net halves the image at least once, so the size must be even "
                         "(a power of 2 suits it best)")
    if size % 2 ** depth:
        raise UsageError(f"--image-size {size} with --depth {depth}: the U-Net needs a size that is a multiple of "
                         f"2**depth = {2 ** depth}")
    d_layers = config.d_layers or patch_layers_for(size)
    if size < 2 ** d_layers * 4:  # the last two convolutions need a map of at least 4 x 4 to give a patch
        raise UsageError(f"--image-size {size}: too small for a PatchGAN with {d_layers} stride-2 layer(s) "
                         f"(needs at least {2 ** d_layers * 4} pixels a side)")
    return dataclasses.replace(config, image_size=size, depth=depth, d_layers=d_layers, training_data=source,
                               objective="l1" if options.l1_only else "gan+l1")


def training_pairs(source: str, config: Any, options: Any) -> tuple[Any, tuple[int, int], str]:
    """(TrainData, (input channels, output channels), description) for --data as typed."""
    if source == embedded.GREY2COLOUR:
        crops = embedded.PhotoCrops(config.image_size, config.direction, options.mirror)
        channels = (1, 3) if config.direction == "AtoB" else (3, 1)
        names = ", ".join(embedded.TRAIN_PHOTOS)
        mirrored = ", mirrored half the time" if options.mirror else ""
        return crops, channels, (f"{source} (random {config.image_size}x{config.image_size} crops of {names}, "
                                 f"downscaled to a 256-pixel short side{mirrored})")
    if source == embedded.EDGES2DIGITS:
        pairs = embedded.resized(embedded.edges2digits("train"), config.image_size).oriented(config.direction)
        return PairBatches(pairs, flip=False), channels_of(pairs), pairs.description
    pairs = folder_pairs(source, "train", config.image_size).oriented(config.direction)
    return PairBatches(pairs, flip=options.mirror), channels_of(pairs), pairs.description


def channels_of(pairs: Pairs) -> tuple[int, int]:
    return pairs.a.shape[1], pairs.b.shape[1]


def held_out_pairs(source: str, config: Any) -> Pairs:
    """The evaluation pairs for --data as typed, oriented and sized as the model expects."""
    if source == embedded.EDGES2DIGITS:
        pairs = embedded.resized(embedded.edges2digits("test"), config.image_size)
    elif source == embedded.GREY2COLOUR:
        pairs = embedded.grey2colour_held_out(config.image_size)
    else:
        sides = (config.in_channels, config.out_channels)
        pairs = folder_pairs(source, "test", config.image_size, sides if config.direction == "AtoB" else sides[::-1])
    pairs = pairs.oriented(config.direction)
    if channels_of(pairs) != (config.in_channels, config.out_channels):
        raise UsageError(f"--data {source}: its pairs have {channels_of(pairs)} (input, output) channels, the model "
                         f"maps {config.in_channels} to {config.out_channels}")
    return pairs


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    config = finished_config(config, data or embedded.EDGES2DIGITS, options)
    batches, (in_channels, out_channels), description = training_pairs(config.training_data, config, options)
    config = dataclasses.replace(config, in_channels=in_channels, out_channels=out_channels)
    return Prepared(config, batches, description)
