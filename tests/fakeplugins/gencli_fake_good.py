"""A well-behaved third-party plugin for tests: an "image model" that is one linear layer whose weights
scale seeded noise. Small enough to build and sample in milliseconds; torch is imported lazily."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gencli.plugin import Images, Prepared, option


@dataclass
class Config:
    size: int = option(6, "Image side in pixels.")
    channels: int = option(3, "1 for grey, 3 for colour.")


@dataclass
class TrainOptions:
    pass


@dataclass
class SampleOptions:
    brightness: float = option(1.0, "Multiplies the pixel values [0, 2].")
    pattern: Literal["noise", "flat"] = option("noise", "noise: seeded random pixels; flat: one grey level.")
    gain: list[float] = option([], "Per-channel multiplier; repeat the flag, once per channel.")


@dataclass
class EvalOptions:
    pass


class FakeImages:
    name = "fakeimg"
    modality = "image"
    summary = "Seeded noise images from a one-layer model (a test plugin)."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {}
    train_defaults = {"steps": 1}
    default_data = "none: there is nothing to learn"
    bundled_weights: Path | None = None

    def build(self, config: Config) -> Any:
        import torch

        if config.size < 1:
            raise ValueError("size must be positive")
        return torch.nn.Linear(config.channels, config.channels, bias=False)

    def prepare(self, data, config, options):
        raise NotImplementedError("fakeimg cannot be trained")

    def loss(self, model, batch, options):
        raise NotImplementedError

    def sample(self, model: Any, config: Config, options: SampleOptions, request: Any) -> Images:
        import torch

        generator = torch.Generator().manual_seed(request.seed)
        if options.pattern == "flat":
            noise = torch.full((request.n, config.size, config.size, config.channels), 0.5)
        else:
            noise = torch.rand(request.n, config.size, config.size, config.channels, generator=generator)
        gain = torch.tensor(options.gain) if options.gain else torch.ones(config.channels)
        pixels = (model(noise) * options.brightness * gain).clamp(0, 1) * 255  # (N, H, W, C)
        return Images(pixels.round().to(torch.uint8).cpu().numpy())

    def evaluate(self, model, config, options, request):
        return {"nothing": 0.0}


plugin = FakeImages()
