"""pix2pix (Isola et al. 2016): image-to-image translation with a conditional GAN.

A U-Net generator maps an input image A to an output image B; a PatchGAN discriminator judges overlapping
patches of the pair (A, B) as real or translated; the generator minimises the conditional GAN loss plus
lambda (100) times the L1 distance to the true B. ``--l1-only`` trains the paper's L1 baseline.

This module is the declaration and stays torch-free; everything else is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gencli.plugin import ImageInput, LazyPlugin, Preset, option

WEIGHTS = Path(__file__).parent / "weights"


@dataclass
class Config:
    image_size: int = option(0, "Side of the square images, a multiple of 2**depth. 0: the data's own (32 for "
                                "edges2digits, 64 for grey2colour, 256 for a folder as in the paper).",
                             minimum=0, maximum=1024)
    depth: int = option(0, "U-Net levels, each a stride-2 halving with a skip connection. 0: as many as the size "
                           "allows, down to a 1x1 bottleneck for a power of 2 (the paper: 8 levels at 256).",
                        minimum=0, maximum=10)
    base_channels: int = option(16, "Channels of the U-Net's outermost level, doubling per level (paper: 64; 16 "
                                    "keeps a CPU step fast and the bundled file small).", minimum=1, maximum=512)
    max_channels: int = option(64, "Cap on the U-Net's channels per level (paper: 512).", minimum=1, maximum=1024)
    dropout_layers: int = option(2, "Innermost decoder layers with dropout 0.5, the generator's noise, kept on at "
                                    "sampling (paper: 3 of 8).", minimum=0, maximum=10)
    d_base_channels: int = option(32, "Channels of the PatchGAN's first layer, doubling per layer up to 8x (paper: "
                                      "64).", minimum=1, maximum=512)
    d_layers: int = option(0, "The PatchGAN's stride-2 layers, which set its patch size (1: 16 px, 2: 34, 3: 70 "
                              "as in the paper). 0: scaled to the image, about the paper's 70/256 of its side.",
                           minimum=0, maximum=8)
    direction: Literal["AtoB", "BtoA"] = option("AtoB", "Which side of the pairs is the input: A (AtoB) or B "
                                                        "(BtoA), as in the official tool.")
    in_channels: int = option(1, "Input channels (learned from the data).", flag=False)
    out_channels: int = option(1, "Output channels (learned from the data).", flag=False)
    training_data: str = option("edges2digits", "The --data the model was trained on.", flag=False)
    objective: str = option("gan+l1", "What the generator was trained on: gan+l1, or l1 (--l1-only).", flag=False)


@dataclass
class TrainOptions:
    l1_weight: float = option(100.0, "lambda, the weight of the L1 term against the cGAN term (paper: 100).",
                              minimum=0, maximum=1e6)
    l1_only: bool = option(False, "Train the generator on the L1 term alone, the paper's L1 baseline (the "
                                  "discriminator stays untrained).")
    mirror: bool = option(True, "Mirror each training pair left-right with probability 1/2 (the paper's "
                                "jitter); never for edges2digits, whose mirrored digits are not digits.")


@dataclass
class SampleOptions:
    keep_size: bool = option(False, "Translate --input at its own size (the U-Net is fully convolutional) instead "
                                    "of resizing it to the model's training size and the output back.")
    examples: str = option("", "Without --input: the data whose held-out pairs to translate, one row (input, "
                               "output, target) per -n; default: the model's training data.")


@dataclass
class EvalOptions:
    against: str = option("", "A second pix2pix run folder scored on the same held-out pairs with the same seed, "
                              "e.g. the --l1-only baseline. Default: the bundled L1-only model when a GAN is "
                              "scored on edges2digits; 'none' skips it.")
    pairs: int = option(0, "Score only N evenly spaced held-out pairs (0: all of them).", minimum=0,
                        maximum=10_000_000)


class Pix2Pix(LazyPlugin):
    name = "pix2pix"
    modality = "image"
    summary = "pix2pix (Isola et al. 2016): U-Net + PatchGAN image-to-image translation, e.g. edges -> digits."
    implementation = "gencli_pix2pix.api"  # build, prepare, loss, sample, evaluate (imports torch)
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"base_channels": 4, "max_channels": 8, "d_base_channels": 4},
                       train={"steps": 20, "batch_size": 8}, evaluate={"pairs": 50, "against": "none"}),
    }
    # The paper's Adam 2e-4 with beta1 0.5 and no clipping; batch 32 instead of its 1-10 (a CPU step costs little
    # more for 32 images than for 1); the engine's cosine decay to lr/10 stands in for its linear decay.
    train_defaults = {"steps": 4000, "batch_size": 32, "lr": 2e-4, "warmup_steps": 0, "log_every": 50,
                      "save_every": 500, "grad_clip": 0.0}
    default_data = ("edges2digits: Canny edges of the embedded MNIST digits -> the digits (4,000 train / 500 test); "
                    "also grey2colour, or a folder of pairs (A/ and B/, or side-by-side A|B images)")
    bundled_weights = WEIGHTS / "edges2digits"
    supports_bf16 = False  # the recipes were only checked in fp32
    # channels None: the core hands over grey files as grey and others as RGB; sample() converts to the model's.
    image_input = ImageInput(channels=None, required=False,
                             help="Image to translate (e.g. an edge map): a PNG/JPEG file, a folder of them (one "
                                  "output each), or '-' for stdin. Without it: held-out pairs, translated.")

    def configure_optimizer(self, model: object, lr: float, options: object) -> object:
        """Adam with beta1 0.5 (the paper's), one parameter group per player."""
        return self._function("configure_optimizer")(model, lr)


plugin = Pix2Pix()
