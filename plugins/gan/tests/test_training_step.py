"""The combined scalar gives each player exactly its own loss's gradient (simultaneous updates)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from gencli_gan import cgan, dcgan, gan

CASES = [(gan, {"z_dim": 8, "g_hidden": 32, "d_units": 16, "d_pieces": 2, "d_dropout": 0.0}),
         (dcgan, {"z_dim": 8, "base_channels": 4}),
         (cgan, {"z_dim": 8, "base_channels": 4})]


def separate_gradients(model, batch, r1=0.0):
    """Two separate passes, the textbook way: L_D for D's parameters, L_G (through an unfrozen D) for G's."""
    real, labels, z = batch
    real = model.from_uint8(real).requires_grad_(r1 > 0)
    fake = model.generator(z, labels)
    d_real, d_fake = model.discriminator(real, labels), model.discriminator(fake.detach(), labels)
    d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    if r1:  # gamma / 2 * E ||grad_x D(x)||^2 on the real images, differentiated through (double backward)
        (slope,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        d_loss = d_loss + r1 / 2 * slope.square().flatten(1).sum(1).mean()
    d_grads = torch.autograd.grad(d_loss, list(model.discriminator.parameters()))
    g_logits = model.discriminator(model.generator(z, labels), labels)
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    g_grads = torch.autograd.grad(g_loss, list(model.generator.parameters()))
    return d_grads, g_grads


@pytest.mark.parametrize("r1", [0.0, 2.0])
@pytest.mark.parametrize("plugin,config", CASES, ids=[p.name for p, _ in CASES])
def test_combined_loss_gradients_equal_the_separate_players_gradients(plugin, config, r1) -> None:
    """Also with the R1 penalty: it reaches D's parameters through the input gradient, and never G's."""
    torch.manual_seed(0)
    options = plugin.TrainOptions(real_label=1.0, r1=r1)
    prepared = plugin.prepare(None, plugin.Config(**config), options)
    model = plugin.build(prepared.config).train()
    batch = prepared.data.batch(torch.Generator().manual_seed(3), 8)
    d_expected, g_expected = separate_gradients(model, batch, r1)
    loss, metrics = plugin.loss(model, batch, options)
    loss.backward()
    assert loss.item() == pytest.approx(metrics["d_loss"] + metrics["g_loss"], rel=1e-6)
    for expected, got in zip(d_expected, model.discriminator.parameters()):
        torch.testing.assert_close(got.grad, expected, rtol=1e-5, atol=1e-6)
    for expected, got in zip(g_expected, model.generator.parameters()):
        torch.testing.assert_close(got.grad, expected, rtol=1e-5, atol=1e-6)
    # and the combined gradient is not simply L_G's through D (which would push D towards calling fakes real)
    assert any(float(p.grad.abs().sum()) > 0 for p in model.discriminator.parameters())


def test_metrics_show_mode_collapse() -> None:
    """A generator that ignores z makes identical fakes: fake_diversity 0 while real_diversity is not."""
    torch.manual_seed(0)
    prepared = gan.prepare(None, gan.Config(**CASES[0][1]), gan.TrainOptions())
    model = gan.build(prepared.config).train()
    real, labels, z = prepared.data.batch(torch.Generator().manual_seed(0), 16)
    _, metrics = gan.loss(model, (real, labels, torch.zeros_like(z)), None)
    assert metrics["fake_diversity"] < 1e-6 < 0.1 < metrics["real_diversity"]
    for key in ("d_loss", "g_loss", "d_real_acc", "d_fake_acc"):
        assert key in metrics
