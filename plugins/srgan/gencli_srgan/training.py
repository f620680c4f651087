"""Data, the two training objectives, and the start of the adversarial stage from an SRResNet run.

The engine runs one ``loss`` and one backward pass per step. The adversarial step is written, as in the gan
plugin, as ONE scalar whose gradient is each player's own loss gradient:

    L = L_D(theta_D; outputs detached) + L_G(theta_G; the discriminator's parameters detached)

so both players move simultaneously from the same state (Goodfellow et al.'s Algorithm 1 with k = 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.func import functional_call
from torch.nn import functional as F

from gencli.errors import UsageError
from gencli.plugin import Prepared
from gencli_srgan import photos
from gencli_srgan.networks import SuperResolution


def build(config: Any) -> SuperResolution:
    return SuperResolution(config)


def stage_of(options: Any) -> str:
    return getattr(options, "stage", "mse")  # srresnet's options have no stage: always the pixel loss


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    chosen = photos.photos(data, "train")
    config = dataclasses.replace(config, discriminator=stage_of(options) == "gan",
                                 training_data=data or photos.EMBEDDED)
    if config.scale not in (2, 4):
        raise UsageError(f"--scale {config.scale}: SRResNet upscales 2x or 4x (one or two pixel-shuffle stages)")
    return Prepared(config, photos.CropBatches(chosen, config.scale, options.crop), photos.describe(data, "train"))


def configure_optimizer(model: Any, lr: float, options: Any) -> torch.optim.Optimizer:
    """Adam; for the game beta1 0.5 (Radford et al.: 0.9 oscillates), one group per player."""
    if model.discriminator is None:
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.Adam([{"params": model.generator.parameters()},
                             {"params": model.discriminator.parameters()}], lr=lr, betas=(0.5, 0.999))


def loss(model: Any, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    low, high = batch["low"], batch["high"]  # (B, 3, h, w), (B, 3, h*s, w*s) in [0, 1]
    output = model.generator(low)  # (B, 3, h*s, w*s)
    pixel = F.mse_loss(output, high)
    metrics = {"pixel_mse": float(pixel.detach()), "psnr_rgb_db": psnr(float(pixel.detach()))}
    if model.discriminator is None or stage_of(options) == "mse":
        return pixel, metrics
    discriminator = model.discriminator
    real_logits = discriminator(high)  # (B,)
    fake_logits = discriminator(output.detach())  # (B,): no gradient reaches G through L_D
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    g_logits, fake_features = functional_call(discriminator, frozen, (output,), {"features": True})
    with torch.no_grad():
        _, real_features = discriminator(high, features=True)
    # The content loss the paper took from VGG, here from the discriminator's own stages (detached).
    feature = sum(F.mse_loss(f, r) for f, r in zip(fake_features, real_features)) / len(real_features)
    adversarial = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))  # -log D(G(x))
    g_loss = (options.pixel_weight * pixel + options.feature_weight * feature
              + options.adversarial_weight * adversarial)
    metrics.update(d_loss=float(d_loss.detach()), adversarial=float(adversarial.detach()),
                   feature=float(feature.detach()),
                   d_real_acc=float((real_logits > 0).float().mean()),  # D calls real images real
                   d_fake_acc=float((fake_logits < 0).float().mean()))  # D calls outputs fake
    return d_loss + g_loss, metrics


def psnr(mse: float, peak: float = 1.0) -> float:
    import math

    return 10 * math.log10(peak * peak / max(mse, 1e-12))


def initialize(model: Any, options: Any) -> None:
    """The adversarial stage starts from an SRResNet's generator: --init RUN, else the bundled srresnet."""
    if stage_of(options) != "gan":
        return
    from gencli import weights
    from gencli_srgan import srresnet

    source = options.init or None
    loaded = weights.load(srresnet, source, None, torch.device("cpu"), quiet=True)
    start, own = loaded.config, model.generator
    mine = {"scale": own.scale, "blocks": len(own.body), "channels": own.head[0].out_channels}
    theirs = {key: getattr(start, key) for key in mine}
    if mine != theirs:
        named = options.init or "the bundled srresnet weights"
        raise UsageError(f"--init {named}: its generator has " + ", ".join(f"{k} {v}" for k, v in theirs.items())
                         + "; this run's has " + ", ".join(f"{k} {v}" for k, v in mine.items())
                         + "; give the same --scale, --blocks and --channels, or --init a run trained with "
                         "`--stage mse` and this run's architecture")
    with torch.no_grad():
        for name, tensor in loaded.model.generator.state_dict().items():
            own.state_dict()[name].copy_(tensor)
