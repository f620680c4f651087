"""srresnet and srgan: the shared plugin contract, tiling, shapes, --scale errors and the start of the
adversarial stage from an SRResNet run, on tiny models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from gencli.errors import UsageError
from gencli.plugin import InputImage, SampleRequest
from gencli.testing import PluginContract
from gencli_srgan import Config, SampleOptions, TrainOptions, srgan, srresnet
from gencli_srgan.networks import SRResNet
from gencli_srgan.upscale import upscale

TINY = {"blocks": 1, "channels": 8, "d_channels": 4}


class TestSRResNetContract(PluginContract):
    plugin = srresnet
    tiny_config = TINY
    tiny_train_options = {"crop": 16}
    seed_changes_output = False  # an upscaled photo depends on the photo alone


class TestSRGANContract(PluginContract):
    plugin = srgan
    tiny_config = TINY
    tiny_train_options = {"crop": 16}
    seed_changes_output = False

    def test_training_lowers_the_loss(self) -> None:
        """The adversarial stage's total is a game's value; each player, trained on it with the other fixed,
        lowers its own loss (the discriminator its d_loss; the generator its adversarial loss, with the pixel and
        feature terms, which pull elsewhere, weighted 0)."""
        for player, key in (("discriminator", "d_loss"), ("generator", "adversarial")):
            model, prepared, options = self._model()
            options = dataclasses.replace(options, adversarial_weight=1.0, pixel_weight=0.0, feature_weight=0.0)
            losses = self._train_on_one_batch(model, prepared, options, getattr(model, player).parameters(),
                                              metric=key)
            assert losses[-1] < losses[0] * 0.9, f"{key} went {losses[0]:.4f} -> {losses[-1]:.4f}"


def tiny_generator(scale: int = 4) -> SRResNet:
    torch.manual_seed(0)
    return SRResNet(scale=scale, blocks=2, channels=8).eval()


def photo(height: int = 37, width: int = 52) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_tiles_give_the_untiled_image():
    generator, low = tiny_generator(), photo()
    with torch.inference_mode():
        whole = upscale(generator, low, tile=4096, device="cpu")
        pieces = upscale(generator, low, tile=16, device="cpu")  # 3 x 4 tiles
    assert whole.shape == pieces.shape == (37 * 4, 52 * 4, 3)
    difference = np.abs(whole.astype(int) - pieces.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.001  # float rounding, nothing more


@pytest.mark.parametrize("scale", [2, 4])
def test_a_sample_is_scale_times_its_input_and_keeps_transparency(scale):
    config = Config(scale=scale, **TINY)
    model = srresnet.build(config).eval()
    alpha = np.full((9, 13), 255, dtype=np.uint8)
    alpha[:, :4] = 0
    request = SampleRequest(1, 0, torch.device("cpu"), input=InputImage(photo(9, 13), alpha, "a.png", "a", "0"))
    with torch.inference_mode():
        output = srresnet.sample(model, config, SampleOptions(), request)
    assert output.pixels.shape == (1, 9 * scale, 13 * scale, 4)
    assert output.pixels[0, :, : 3 * scale, 3].max() == 0 and output.pixels[0, :, 5 * scale:, 3].min() == 255


def test_bad_scales_are_refused():
    with pytest.raises(UsageError, match="--scale 3: SRResNet upscales 2x or 4x"):
        srresnet.build(Config(scale=3, **TINY))
    config = Config(scale=4, **TINY)
    model = srresnet.build(config).eval()
    request = SampleRequest(1, 0, torch.device("cpu"), input=InputImage(photo(8, 8), None, "a.png", "a", "0"))
    with pytest.raises(UsageError, match="--scale 2: these weights upscale 4x"):
        srresnet.sample(model, config, SampleOptions(scale=2), request)


def test_the_adversarial_stage_starts_from_the_srresnet_run(tmp_path: Path):
    from gencli.weights import save_model

    torch.manual_seed(3)
    start_config = Config(**TINY)
    start = srresnet.build(start_config)
    save_model(tmp_path, srresnet, start, start_config)
    model = srgan.build(dataclasses.replace(start_config, discriminator=True))
    srgan.initialize(model, TrainOptions(init=str(tmp_path)))
    for name, tensor in start.generator.state_dict().items():
        assert torch.equal(model.generator.state_dict()[name], tensor), name
    wider = srgan.build(Config(blocks=1, channels=12, d_channels=4, discriminator=True))
    with pytest.raises(UsageError, match="channels 8.*channels 12"):
        srgan.initialize(wider, TrainOptions(init=str(tmp_path)))


def test_evaluation_scores_bicubic_beside_the_model():
    config = Config(**TINY)
    model = srresnet.build(config).eval()
    from gencli.plugin import EvalRequest

    with torch.inference_mode():
        figures = srresnet.evaluate(model, config, srresnet.EvalOptions(), EvalRequest(None, torch.device("cpu"), 0))
    assert figures["images"] == 3
    # The untrained network's output is bicubic plus small noise from its random last layer.
    assert 20 < figures["psnr_y_bicubic_db"] < 40 and abs(figures["psnr_gain_db"]) < 3
    assert figures["hf_energy_ratio_bicubic"] < 0.5  # bicubic upscaling has little of the photos' fine detail
