"""LAPGAN (Denton, Chintala, Szlam and Fergus 2015): a Laplacian pyramid of adversarial networks.

A GAN makes the coarsest image (8x8); at each finer level a conditional GAN makes the band-pass detail that
turns the upsampled coarser image into the next finer one (16x16, then 32x32). Each level is a small,
easier generation problem, and every level trains on real pyramids. Class-conditional on labelled data.

This module is the declaration and stays torch-free; ``model.py``, ``networks.py``, ``pyramid.py``,
``sampling.py`` and ``evaluation.py`` are imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from gencli.plugin import Preset, option
from gencli_gan import WEIGHTS, ConditionalTrainOptions, EvalOptions, _GANPlugin


@dataclass
class LAPGANConfig:
    z_dim: int = option(64, "Latent size of the coarsest level's generator (the finer levels get a noise plane "
                            "each, as in the paper).", minimum=1, maximum=4096)
    pyramid_levels: int = option(3, "Levels of the pyramid: the coarsest side is image_size / 2^(levels - 1), "
                                    "at least 4 (3 for 32x32: 8 -> 16 -> 32).", minimum=2, maximum=6)
    coarse_hidden: int = option(512, "Units in each of the two hidden layers of the coarsest level's fully "
                                     "connected generator and discriminator.", minimum=1, maximum=16_384)
    fine_channels: int = option(16, "Channels of each finer level's convolutions (generator: three 3x3 layers at "
                                    "full resolution; discriminator: two strided layers).", minimum=1, maximum=1024)
    image_size: int = option(32, "Side of the square images (the embedded 28x28 digits are padded to it with "
                                 "black, as for LeNet; a folder's images are resized).", minimum=8, maximum=256)
    conditional: bool = option(True, "Condition every level on the class when the data have labels (the embedded "
                                     "digits, or a folder's sub-folders); --no-conditional ignores them.")
    channels: int = option(1, "Image channels (learned from the data).", flag=False)
    num_classes: int = option(0, "Classes the model is conditioned on; 0 is unconditional (learned from the data).",
                              flag=False)
    classes: list = option([], "Class names in label order (learned from the data).", flag=False)
    training_data: str = option("mnist-5k", "The --data the model was trained on (for --neighbours).", flag=False)


@dataclass
class LAPGANTrainOptions(ConditionalTrainOptions):
    r1: float = option(1.0, "R1 penalty gamma (Mescheder et al. 2018) on every level's real images; 0 turns it "
                            "off. In 1,500-step runs with the class losses, the --label all grid scored 92%, 99% "
                            "and 99% of its class at gamma 0.1, 1 and 10, and the digit Frechet distance was "
                            "136, 60 and 158.",
                       minimum=0, maximum=10_000)
    class_loss: float = option(1.0, "Weight of AC-GAN's auxiliary class losses (Odena et al. 2017) at every level "
                                    "of a class-conditional model: each discriminator also learns to name the "
                                    "class of real images, and each generator is scored by it; 0 turns them off "
                                    "(the label then reaches the discriminators by projection only).",
                               minimum=0, maximum=1000)


@dataclass
class SampleOptions:
    label: str = option("", "Class to draw (name or index), or \"all\" for one row per class (-n per row, 10 "
                            "when -n is 1); empty: sample i gets class i mod the number of classes. Only for "
                            "a class-conditional model.", complete_from="classes", complete_extra=("all",))
    levels: bool = option(False, "Show each sample at every level of its pyramid, coarse to fine, one row per "
                                 "sample (coarser levels enlarged by repeating pixels).")
    neighbours: int = option(0, "Put this many nearest training images (pixel L2) beside each sample: the "
                                "memorisation check.", minimum=0, maximum=100)


class LAPGAN(_GANPlugin):
    name = "lapgan"
    summary = ("LAPGAN (Denton et al. 2015): a GAN per Laplacian pyramid level, 8 -> 16 -> 32; --label 7, "
               "--levels shows the pyramid.")
    implementation = "gencli_gan.lapgan.api"
    Config = LAPGANConfig
    TrainOptions = LAPGANTrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    default_data = ("mnist-5k: the embedded 5,000 MNIST digits with their labels, padded to 32x32; a folder's "
                    "labels are its sub-folder names (none: unconditional)")
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"z_dim": 8, "coarse_hidden": 16, "fine_channels": 4},
                       train={"steps": 20, "batch_size": 16}, evaluate={"samples": 500}),
    }
    train_defaults = {"steps": 3800, "batch_size": 32, "lr": 2e-4, "warmup_steps": 0, "log_every": 50,
                      "save_every": 500, "grad_clip": 1.0}
    bundled_weights = WEIGHTS / "lapgan"
    # A sample's codes are z plus a noise plane per level, not the single latent that latent editing searches.
    latent_editor = None


lapgan = LAPGAN()
