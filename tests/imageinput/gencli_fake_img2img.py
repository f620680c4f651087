"""An image-to-image test plugin: declares ``image_input``, so `gencli sample fakeimg2img --input ...` works.

Its "model" is a per-pixel linear map of the colours (identity weights in the tests), and ``--scale K``
(its own option, in place of the core's viewing flag) repeats every pixel K x K: the output is a function of
the input that a test can predict exactly. Transparency is handed back as a last channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.plugin import ImageInput, Images, option


@dataclass
class Config:
    channels: int = option(3, "Colour channels of the linear map.")


@dataclass
class TrainOptions:
    pass


@dataclass
class SampleOptions:
    scale: int = option(1, "Repeat every pixel K x K (the plugin's own factor).", minimum=1, maximum=4)


@dataclass
class EvalOptions:
    pass


class FakeImageToImage:
    name = "fakeimg2img"
    modality = "image"
    summary = "Maps each --input image through a per-pixel linear layer (a test plugin)."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {}
    train_defaults = {"steps": 1}
    default_data = "none: there is nothing to learn"
    bundled_weights: Path | None = None
    image_input = ImageInput(channels=3, max_pixels=10_000)

    def build(self, config: Config) -> Any:
        import torch

        return torch.nn.Linear(config.channels, config.channels, bias=False)

    def prepare(self, data, config, options):
        raise NotImplementedError("fakeimg2img cannot be trained")

    def loss(self, model, batch, options):
        raise NotImplementedError

    def sample(self, model: Any, config: Config, options: SampleOptions, request: Any) -> Images:
        import numpy as np
        import torch

        image = request.input
        colours = torch.from_numpy(image.pixels).float() / 255  # (H, W, 3)
        mapped = (model(colours).clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (H, W, 3)
        if image.alpha is not None:
            mapped = np.concatenate([mapped, image.alpha[:, :, None]], axis=2)  # (H, W, 4)
        mapped = mapped.repeat(options.scale, axis=0).repeat(options.scale, axis=1)
        return Images(np.repeat(mapped[None], request.n, axis=0))  # (n, H*K, W*K, C)

    def evaluate(self, model, config, options, request):
        return {"nothing": 0.0}


plugin = FakeImageToImage()
