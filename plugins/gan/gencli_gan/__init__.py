"""GANs: the 2014 MLP GAN (Goodfellow et al.), DCGAN (Radford et al. 2016), a class-conditional GAN (Mirza and
Osindero 2014) and, in ``lapgan/``, the Laplacian pyramid of GANs (Denton et al. 2015): four plugins in one package.

All of them share one training step (``training.py``): the discriminator and the generator are updated
simultaneously from ONE scalar whose single backward pass gives each player the gradient of its own loss,
with the non-saturating generator loss -log D(G(z)). Evaluation (``evaluation.py``) follows the GAN paper's
Parzen-window protocol and adds a Frechet distance and label coverage in the feature space of a small digit
classifier that gencli trains itself (``gencli.metrics.digits``; not the Inception network, so not "FID").

This module is the declaration and stays torch-free; everything else is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gencli.plugin import LazyPlugin, Preset, option

WEIGHTS = Path(__file__).parent / "weights"

# ---- architecture configs (config.json) ---------------------------------------------------------------


@dataclass
class MLPConfig:
    z_dim: int = option(100, "Latent size (paper: 100); z is standard Gaussian.", minimum=1, maximum=4096)
    g_hidden: int = option(400, "Units in each of the generator's two ReLU layers (paper: 1200; 400 keeps the "
                                "bundled file under 4 MB).", minimum=1, maximum=16_384)
    d_units: int = option(128, "Maxout units in each of the discriminator's two hidden layers (paper: 240).",
                          minimum=1, maximum=4096)
    d_pieces: int = option(4, "Linear pieces per maxout unit (paper: 5).", minimum=1, maximum=64)
    d_dropout: float = option(0.5, "Dropout on the inputs to each discriminator layer (the paper trained D with "
                                   "dropout); 0.5 with label smoothing kept our runs from collapsing to a few digits.",
                                   minimum=0, below=1)
    image_size: int = option(28, "Side of the square images the model makes.", minimum=4, maximum=256)
    channels: int = option(1, "Image channels (learned from the data).", flag=False)
    training_data: str = option("mnist-5k", "The --data the model was trained on (for --neighbours).", flag=False)


@dataclass
class DCGANConfig:
    z_dim: int = option(64, "Latent size (Radford et al.: 100; 64 suffices for 28x28 digits).", minimum=1, maximum=4096)
    base_channels: int = option(32, "Channels of the last generator / first discriminator conv; the other conv "
                                    "has twice as many (32 keeps a CPU step fast).", minimum=1, maximum=1024)
    image_size: int = option(28, "Side of the square images; a multiple of 4 (two stride-2 convolutions).",
                             minimum=4, maximum=256)
    channels: int = option(1, "Image channels (learned from the data).", flag=False)
    training_data: str = option("mnist-5k", "The --data the model was trained on (for --neighbours).", flag=False)


@dataclass
class CGANConfig(DCGANConfig):
    num_classes: int = option(10, "Classes the model is conditioned on (learned from the data).", flag=False)
    classes: list = option([str(d) for d in range(10)], "Class names in label order (learned from the data).",
                           flag=False)


# ---- options ----------------------------------------------------------------------------------------------


@dataclass
class TrainOptions:
    real_label: float = option(0.9, "The discriminator's target for real images; 0.9 is one-sided label smoothing "
                                    "(Salimans et al. 2016): with it (and D dropout 0.5) the bundled MLP GAN's "
                                    "label entropy rose from 1.55 to 1.96 nats (ln 10 = 2.30); 1 turns it off.",
                                    above=0, maximum=1)
    r1: float = option(1.0, "R1 penalty gamma (Mescheder et al. 2018): gamma / 2 times the discriminator's "
                            "squared input gradient on real images; 0 turns it off. At 1 the bundled models stopped "
                            "dropping digits (dcgan: label coverage 0.6 -> 1.0, digit Frechet 132 -> 41).",
                            minimum=0, maximum=10_000)


@dataclass
class ConditionalTrainOptions(TrainOptions):
    r1: float = option(0.1, "R1 penalty gamma (Mescheder et al. 2018); 0 turns it off. The labels already keep "
                            "every class in play; at 0.1 the bundled cgan's samples match their label 94.3% of "
                            "the time (90.9% without R1, 90.1% at gamma 1) and its digit Frechet falls 35 -> 18.",
                            minimum=0, maximum=10_000)


@dataclass
class SampleOptions:
    interpolate: bool = option(False, "Rows of latent interpolations: row r walks from the latent of seed S+2r to "
                                      "that of S+2r+1 (-n rows).")
    steps: int = option(10, "Images per interpolation row, end points included.", minimum=2, maximum=1000)
    path: Literal["linear", "slerp"] = option("slerp", "Interpolation path: linear, or spherical (slerp: stays "
                                                        "at the norm a Gaussian latent typically has).")
    arithmetic: str = option("", "Latent arithmetic such as \"3 - 8 + 12\": each term a seed or a .safetensors "
                                 "file with a tensor \"z\"; shows the terms and the result.", reads_files=True)
    neighbours: int = option(0, "Put this many nearest training images (pixel L2) beside each sample: the "
                                "memorisation check.", minimum=0, maximum=100)


@dataclass
class ConditionalSampleOptions:
    label: str = option("", "Class to draw (name or index), or \"all\" for one row per class (-n per row, 10 "
                            "when -n is 1); empty: sample i gets class i mod the number of classes.",
                            complete_from="classes", complete_extra=("all",))
    neighbours: int = option(0, "Put this many nearest training images (pixel L2) beside each sample: the "
                                "memorisation check.", minimum=0, maximum=100)


@dataclass
class EvalOptions:
    samples: int = option(10000, "Generated samples for the Parzen window and the digit-feature figures (the "
                                 "GAN paper used 10,000).", minimum=2, maximum=1_000_000)


# ---- the three plugins -----------------------------------------------------------------------------------


class _GANPlugin(LazyPlugin):
    implementation = "gencli_gan.api"  # build, prepare, loss, sample, evaluate (imports torch)
    modality = "image"
    TrainOptions = TrainOptions
    EvalOptions = EvalOptions
    default_data = "mnist-5k: the embedded 5,000 MNIST digits (4,000 train / 500 valid / 500 test)"
    supports_bf16 = False  # GAN training is fragile enough; the recipes were only checked in fp32

    # grad_clip (in train_defaults) clips the joint norm of both players' gradients. That rescales each player's
    # gradient by the same factor without mixing them, and Adam divides by its running gradient RMS, so the
    # players' updates barely change; it only guards against a spike in early steps.

    def configure_optimizer(self, model: Any, lr: float, options: Any) -> Any:
        """Adam with beta1 0.5 (Radford et al.), one parameter group per player."""
        return self._function("configure_optimizer")(model, lr)


class _Editable:
    """gan, dcgan and cgan: one generator from one latent, so iGAN-style editing applies (gencli.editing)."""

    def latent_editor(self, model: Any, config: Any, options: Any) -> Any:
        return self._function("latent_editor")(model, config, options)  # type: ignore[attr-defined]


class GAN(_Editable, _GANPlugin):
    name = "gan"
    summary = "The 2014 MLP GAN (Goodfellow et al.): ReLU generator, maxout discriminator, Parzen evaluation."
    Config = MLPConfig
    SampleOptions = SampleOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"z_dim": 8, "g_hidden": 32, "d_units": 16, "d_pieces": 2},
                       train={"steps": 20, "batch_size": 16}, evaluate={"samples": 500}),
    }
    # Adam 2e-4 with beta1 0.5, batch 64; 10,000 steps (160 passes over the 4,000 digits): 3 min on one core.
    train_defaults = {"steps": 10000, "batch_size": 64, "lr": 2e-4, "warmup_steps": 0, "log_every": 50,
                      "save_every": 1000, "grad_clip": 1.0}
    bundled_weights = WEIGHTS / "gan"


class DCGAN(_Editable, _GANPlugin):
    name = "dcgan"
    summary = "DCGAN (Radford et al. 2016): strided convolutions and batch norm; latent walks and arithmetic."
    Config = DCGANConfig
    SampleOptions = SampleOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"z_dim": 8, "base_channels": 4}, train={"steps": 20, "batch_size": 16},
                       evaluate={"samples": 500}),
    }
    # Radford et al.'s Adam 2e-4, beta1 0.5, batch 64; 5,000 steps: 3-4 min on one core.
    train_defaults = {"steps": 5000, "batch_size": 64, "lr": 2e-4, "warmup_steps": 0, "log_every": 50,
                      "save_every": 500, "grad_clip": 1.0}
    bundled_weights = WEIGHTS / "dcgan"


class CGAN(_Editable, _GANPlugin):
    name = "cgan"
    summary = "Class-conditional DCGAN (Mirza and Osindero 2014): --label 7, or --label all for a row per class."
    Config = CGANConfig
    TrainOptions = ConditionalTrainOptions
    SampleOptions = ConditionalSampleOptions
    presets = DCGAN.presets
    train_defaults = DCGAN.train_defaults
    default_data = ("mnist-5k: the embedded 5,000 MNIST digits with their labels; a folder's labels are its "
                    "sub-folder names")
    bundled_weights = WEIGHTS / "cgan"


gan = GAN()
dcgan = DCGAN()
cgan = CGAN()
