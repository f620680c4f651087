"""The training step: each player gets exactly its own objective's gradient, --l1-only trains the generator on
L1 alone, and steps of the plugin's own optimizer lower the L1 term."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from gencli_pix2pix import Config, TrainOptions, plugin
from gencli_pix2pix.training import to_signed

TINY = {"base_channels": 4, "max_channels": 8, "d_base_channels": 4, "dropout_layers": 0}


def tiny(options: TrainOptions):
    torch.manual_seed(0)
    prepared = plugin.prepare(None, Config(**TINY), options)
    model = plugin.build(prepared.config).train()
    return model, prepared.data.batch(torch.Generator().manual_seed(3), 8)


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def test_combined_loss_gives_each_player_its_own_gradient() -> None:
    """Against the textbook two passes: 1/2 (L_D) for D; L_cGAN through an unfrozen D plus lambda L1 for G."""
    options = TrainOptions()
    model, batch = tiny(options)
    a, b = to_signed(batch["a"]), to_signed(batch["b"])
    fake = model.generator(a)
    d_loss = 0.5 * (bce(model.discriminator(a, b), 1.0) + bce(model.discriminator(a, fake.detach()), 0.0))
    d_expected = torch.autograd.grad(d_loss, list(model.discriminator.parameters()))
    g_loss = bce(model.discriminator(a, fake), 1.0) + options.l1_weight * (fake - b).abs().mean()
    g_expected = torch.autograd.grad(g_loss, list(model.generator.parameters()))
    loss, metrics = plugin.loss(model, batch, options)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(metrics["d_loss"] + metrics["g_gan"] + 100 * metrics["l1"], rel=1e-5)
    for expected, got in zip(d_expected, model.discriminator.parameters()):
        torch.testing.assert_close(got.grad, expected, rtol=1e-4, atol=1e-6)
    for expected, got in zip(g_expected, model.generator.parameters()):
        torch.testing.assert_close(got.grad, expected, rtol=1e-4, atol=1e-5)


def test_l1_only_trains_the_generator_on_l1_alone() -> None:
    options = TrainOptions(l1_only=True)
    model, batch = tiny(options)
    loss, metrics = plugin.loss(model, batch, options)
    loss.backward()
    assert set(metrics) == {"l1"} and float(loss.detach()) == pytest.approx(100 * metrics["l1"], rel=1e-6)
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.generator.parameters())


@pytest.mark.parametrize("l1_only", [False, True])
def test_steps_of_the_plugins_optimizer_lower_the_l1_term(l1_only) -> None:
    options = TrainOptions(l1_only=l1_only)
    model, batch = tiny(options)
    optimizer = plugin.configure_optimizer(model, 2e-3, options)
    l1 = []
    for _ in range(15):
        loss, metrics = plugin.loss(model, batch, options)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        l1.append(metrics["l1"])
    assert l1[-1] < 0.7 * l1[0], l1
