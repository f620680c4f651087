"""The training step: both players and the likelihood terms from ONE scalar, as in gencli_gan.training.

    L = L_D(real, fake detached) + w * L_G(fake; D's parameters detached) + NLL(first frame) + NLL(moves)
        + CE(macro-goals)

The likelihood terms (teacher forcing on real plays) teach the generator the moves; the adversarial term
judges its own free-running plays as wholes, which teacher forcing never shows it (exposure bias), the reason
sequence GANs add a discriminator at all. ``--adversarial-weight 0`` leaves a plain likelihood model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.func import functional_call
from torch.nn import functional as F

from gencli.plugin import Prepared
from gencli_trajgan.data import PlayBatches, finalise, load
from gencli_trajgan.model import TrajGAN


def build(config: Any) -> TrajGAN:
    return TrajGAN(config)


def configure_optimizer(model: TrajGAN, lr: float) -> torch.optim.Optimizer:
    """Adam with beta1 0.5 (Radford et al.); one group per player, both at the engine's lr."""
    return torch.optim.Adam([{"params": model.generator.parameters()},
                             {"params": model.discriminator.parameters()}], lr=lr, betas=(0.5, 0.999))


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    plays = load(data, config, "train", options.data_rate)
    config = finalise(config, plays)
    return Prepared(config, SeededBatches(PlayBatches(plays, config.goal_count > 0)), plays.description)


class SeededBatches:
    """Plays plus one seed per row for the generator's own rollout noise, so a step depends on its batch only."""

    def __init__(self, plays: PlayBatches) -> None:
        self.plays = plays

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        units, goals = self.plays.batch(generator, batch_size)
        seeds = torch.randint(0, 2**62, (batch_size,), generator=generator)
        return units, goals, seeds


def loss(model: TrajGAN, batch: tuple[torch.Tensor, ...], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    units, goals, seeds = batch  # (B, T, A, 2), (B, T, P), (B,)
    generator, discriminator = model.generator, model.discriminator
    terms = generator.log_likelihood(units, goals)
    likelihood = sum(terms.values())
    metrics = {name: float(value.detach()) for name, value in terms.items()}
    total = likelihood
    if options.adversarial_weight > 0:
        noise = torch.Generator(device=units.device).manual_seed(int(seeds[0]))
        real = units[: options.adversarial_plays]  # (B', T, A, 2)
        fake = generator.rollout(real.shape[0], real.shape[1], generator=noise).units  # (B', T, A, 2)
        real_logits = discriminator(real)  # (B',)
        fake_logits = discriminator(fake.detach())  # no gradient reaches G through L_D
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, options.real_label))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
        g_logits = functional_call(discriminator, frozen, (fake,))  # D held fixed for G's loss
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))  # -log D(G(z))
        total = total + d_loss + options.adversarial_weight * g_loss
        with torch.no_grad():
            real_step = (real[:, 1:] - real[:, :-1]).norm(dim=-1).mean()
            fake_step = (fake[:, 1:] - fake[:, :-1]).norm(dim=-1).mean()
            metrics.update(d_loss=float(d_loss), g_loss=float(g_loss),
                           d_real_acc=float((real_logits > 0).float().mean()),
                           d_fake_acc=float((fake_logits < 0).float().mean()),
                           step_ratio=float(fake_step / real_step.clamp_min(1e-9)))  # 1: moves as long as real
    metrics["likelihood_nll"] = float(likelihood.detach())
    return total, metrics
