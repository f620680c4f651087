"""The shared plugin contract on a tiny pix2pix."""

from __future__ import annotations

from gencli.testing import PluginContract
from gencli_pix2pix import plugin

TINY = {"base_channels": 4, "max_channels": 8, "d_base_channels": 4}


class TestPix2PixContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_eval_options = {"pairs": 20, "against": "none"}

    def test_training_lowers_the_loss(self) -> None:
        """The combined scalar holds a game's value (D and G pull L_cGAN in opposite directions): what must fall
        is each player's own objective, trained on the combined scalar while the other player stays fixed."""
        for player, key in (("discriminator", "d_loss"), ("generator", "l1")):
            model, prepared, options = self._model()
            losses = self._train_on_one_batch(model, prepared, options, getattr(model, player).parameters(),
                                              metric=key, batch_size=8)
            assert losses[-1] < losses[0] * 0.9, f"{key} went {losses[0]:.4f} -> {losses[-1]:.4f}"
