"""Single-image super-resolution (Ledig et al. 2017): SRResNet, trained for pixel accuracy, and SRGAN, the same
generator fine-tuned adversarially for texture. Two plugins in one package: ``srresnet`` (the pixel-loss
stage, its own bundled weights) and ``srgan`` (both stages: ``--stage mse``, then ``--stage gan --init RUN``).

Both declare ``image_input``: `gencli sample srgan --input photo.png -o big.png` upscales any size, tile by
tile (gencli.tiling) with enough overlap that the result equals one pass over the whole image.

This module is the declaration and stays torch-free; everything else is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gencli.plugin import ImageInput, LazyPlugin, Preset, option

WEIGHTS = Path(__file__).parent / "weights"
# A 4x output of this many input pixels is 16 times larger in memory; 1,500 x 1,500 (the check) fits.
MAX_INPUT_PIXELS = 16_000_000


@dataclass
class Config:
    scale: int = option(4, "Upscaling factor: 2 or 4 (one or two x2 pixel-shuffle stages, as in the paper).",
                        minimum=2, maximum=4)
    blocks: int = option(6, "Residual blocks (paper: 16; 6 trains in minutes on one CPU core).", minimum=1,
                         maximum=64)
    channels: int = option(32, "Feature channels of the generator (paper: 64).", minimum=4, maximum=256)
    d_channels: int = option(16, "Channels of the discriminator's first stage, doubling over four stages (paper: "
                                 "64 over eight convolutions).", minimum=4, maximum=128)
    discriminator: bool = option(False, "Whether the weights include the discriminator (the adversarial stage).",
                                 flag=False)
    training_data: str = option("photos", "The --data the model was trained on.", flag=False)


@dataclass
class PixelTrainOptions:
    crop: int = option(64, "Side of the random high-resolution training crops (paper: 96; 64 is 2.25x cheaper a "
                           "step); a multiple of --scale.", minimum=8, maximum=1024)


@dataclass
class TrainOptions(PixelTrainOptions):
    stage: Literal["mse", "gan"] = option("gan", "mse: SRResNet, the pixel loss alone; gan: SRGAN, adversarial "
                                                 "plus content loss, starting from --init.")
    init: str = option("", "For --stage gan: the SRResNet run folder (or Hub id) to start from; default: the "
                           "bundled srresnet weights.")
    adversarial_weight: float = option(1e-2, "Weight of the generator's adversarial loss -log D(G(x)) (paper: "
                                             "1e-3 beside its VGG loss; here 1e-2: in an 80-step trial it lifted "
                                             "the held-out hf_energy_ratio from 0.02 to 0.14 for 0.25 dB of PSNR).",
                                       minimum=0, maximum=1e3)
    feature_weight: float = option(1.0, "Weight of the feature loss: squared distance between the "
                                        "discriminator's features of the output and of the real image (standing in "
                                        "for the paper's VGG loss, whose ImageNet weights cannot be fetched here).",
                                   minimum=0, maximum=1e3)
    pixel_weight: float = option(1.0, "Weight of the pixel MSE in the adversarial stage (keeps colours and "
                                      "layout; the paper's SRGAN-VGG54 had none).", minimum=0, maximum=1e3)


@dataclass
class SampleOptions:
    scale: int = option(0, "Upscaling factor; must be the model's own (0: the model's, 4 for the bundled "
                           "weights).", minimum=0, maximum=8)
    tile: int = option(128, "Input pixels a side per tile: memory stays bounded on large photos; tiles overlap by "
                            "the network's reach, so the output equals one pass over the whole image.",
                       minimum=16, maximum=4096)


@dataclass
class EvalOptions:
    border: int = option(-1, "Pixels cropped at each edge before scoring; -1: the scale (the papers' convention).",
                         minimum=-1, maximum=64)


class _SuperResolution(LazyPlugin):
    implementation = "gencli_srgan.api"
    modality = "image"
    Config = Config
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    image_input = ImageInput(channels=3, max_pixels=MAX_INPUT_PIXELS,
                             help="Photo(s) to upscale: a PNG/JPEG file, a folder of them, or '-' for stdin.")
    default_data = ("photos: scikit-image's and scikit-learn's sample photos (11 to train on; chelsea, coffee and "
                    "flower held out); or a folder of your photos (a tenth held out)")
    supports_bf16 = False  # the recipes were checked in fp32 only

    def initialize(self, model: Any, options: Any) -> None:
        self._function("initialize")(model, options)


class SRResNet(_SuperResolution):
    name = "srresnet"
    summary = "SRResNet (Ledig et al. 2017): 4x super-resolution trained for pixel accuracy (PSNR)."
    TrainOptions = PixelTrainOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.", config={"blocks": 1, "channels": 8},
                       train={"steps": 10, "batch_size": 4}),
    }
    # Adam (the paper's optimizer) at 1e-3, decayed by the engine's cosine to 1e-4: 1,500 steps of 16 crops.
    train_defaults = {"steps": 1500, "batch_size": 16, "lr": 1e-3, "warmup_steps": 50, "log_every": 50,
                      "save_every": 250, "grad_clip": 1.0}
    bundled_weights = WEIGHTS / "srresnet"


class SRGAN(_SuperResolution):
    name = "srgan"
    summary = "SRGAN (Ledig et al. 2017): SRResNet fine-tuned adversarially for texture; --stage mse|gan."
    TrainOptions = TrainOptions
    presets = SRResNet.presets
    # Paper: 1e-4 for both players (Adam, here with beta1 0.5 for the game: configure_optimizer), 10^5 steps;
    # 400 steps here, about 3 minutes of one core, move the texture well away from SRResNet's.
    train_defaults = {"steps": 400, "batch_size": 16, "lr": 1e-4, "warmup_steps": 0, "log_every": 25,
                      "save_every": 100, "grad_clip": 1.0}
    bundled_weights = WEIGHTS / "srgan"

    def configure_optimizer(self, model: Any, lr: float, options: Any) -> Any:
        return self._function("configure_optimizer")(model, lr, options)


srresnet = SRResNet()
srgan = SRGAN()
