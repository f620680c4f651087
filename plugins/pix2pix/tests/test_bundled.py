"""The bundled edges2digits model: its translations still show the source digit, also for an edge map handed
over as an --input image at another size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gencli import weights
from gencli.plugin import EvalRequest, InputImage, SampleRequest
from gencli_pix2pix import plugin
from gencli_pix2pix.embedded import edges2digits
from gencli_pix2pix.evaluation import digit_accuracy

pytestmark = pytest.mark.skipif(not (plugin.bundled_weights / "model.safetensors").is_file(),
                                reason="no bundled pix2pix weights")


@pytest.fixture(scope="module")
def bundled():
    return weights.load(plugin, None, None, torch.device("cpu"), quiet=True)


def test_the_classifier_recognises_the_source_digit_in_most_translations(bundled) -> None:
    options = plugin.EvalOptions(pairs=200, against="none")
    with torch.inference_mode():
        metrics = plugin.evaluate(bundled.model, bundled.config, options, EvalRequest(None, torch.device("cpu"), 0))
    assert metrics["digit_accuracy"] >= 0.85
    assert metrics["l1"] < metrics["mean_target_l1"] / 2 and metrics["psnr_db"] > metrics["input_as_output_psnr_db"]


def test_an_edge_map_given_at_three_times_the_size_comes_back_as_its_digit(bundled) -> None:
    pairs = edges2digits("test")
    rows = torch.arange(0, 500, 25)  # 20 edge maps, two of each digit
    outputs = []
    for row in rows.tolist():
        big = np.asarray(Image.fromarray(pairs.a[row, 0].numpy()).resize((96, 96), Image.Resampling.NEAREST))
        request = SampleRequest(1, 0, torch.device("cpu"), input=InputImage(big[:, :, None], None, "e.png", "e", ""))
        with torch.inference_mode():
            image = plugin.sample(bundled.model, bundled.config, plugin.SampleOptions(), request)
        assert image.pixels.shape == (1, 96, 96, 1)
        small = Image.fromarray(image.pixels[0, :, :, 0]).resize((32, 32), Image.Resampling.LANCZOS)
        outputs.append(torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0))
    assert digit_accuracy(torch.stack(outputs)[:, None], pairs.labels[rows]) >= 0.85
