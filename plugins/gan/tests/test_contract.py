"""The shared plugin contract for gan, dcgan, cgan and lapgan, on tiny models."""

from __future__ import annotations

from gencli.testing import PluginContract
from gencli_gan import cgan, dcgan, gan
from gencli_gan.lapgan import lapgan

TINY_EVAL = {"samples": 50}


class GANContract(PluginContract):
    tiny_eval_options = TINY_EVAL

    def test_training_lowers_the_loss(self) -> None:
        """A GAN's combined loss is a game's value, not something training lowers: D and G pull it in
        opposite directions. What must hold instead: each player, trained on the combined scalar while its
        opponent stays fixed, lowers its own loss."""
        for player, key in (("discriminator", "d_loss"), ("generator", "g_loss")):
            model, prepared, options = self._model()
            losses = self._train_on_one_batch(model, prepared, options, getattr(model, player).parameters(),
                                              metric=key, batch_size=16)
            assert losses[-1] < losses[0] * 0.9, f"{key} went {losses[0]:.4f} -> {losses[-1]:.4f}"


class TestGANContract(GANContract):
    plugin = gan
    tiny_config = {"z_dim": 8, "g_hidden": 32, "d_units": 16, "d_pieces": 2}


class TestDCGANContract(GANContract):
    plugin = dcgan
    tiny_config = {"z_dim": 8, "base_channels": 4}


class TestCGANContract(GANContract):
    plugin = cgan
    tiny_config = {"z_dim": 8, "base_channels": 4}


class TestLAPGANContract(GANContract):
    plugin = lapgan
    tiny_config = {"z_dim": 8, "coarse_hidden": 16, "fine_channels": 4}
