"""vae: variational autoencoders (Kingma and Welling 2013) with importance-weighted bounds (Burda et al. 2015).

An encoder q(z|x) and a decoder p(x|z) trained by the evidence lower bound (ELBO) or by the tighter IWAE
bound; evaluation reports the test ELBO and the importance-sampled log-likelihood. Sampling draws from the
prior, reconstructs images, interpolates between two codes and traverses one latent dimension at a time.

This module is the plugin's declaration and stays torch-free; the model lives in ``model.py`` (build, prepare,
loss, evaluate), ``networks.py``, ``likelihoods.py``, ``bounds.py`` and ``sampling.py``, imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gencli.plugin import LazyPlugin, Preset, option


@dataclass
class Config:
    arch: Literal["conv", "mlp", "draw"] = option("conv", "Encoder/decoder networks: conv (two stride-2 "
                                                          "convolutions each way), mlp (two dense layers each way) "
                                                          "or draw (Gregor et al. 2015: LSTMs that read and write "
                                                          "through attention over --glimpses steps).")
    latent_size: int = option(32, "Dimensions of z; 16-32 suit MNIST (unused ones collapse to the prior).",
                              minimum=1, maximum=1024)
    conv_channels: int = option(16, "Channels of the first conv layer (the second has twice as many); 16 keeps "
                                         "the k=500 evaluation of 500 digits within seconds on a CPU.",
                                         minimum=1, maximum=512)
    hidden_size: int = option(256, "Width of the dense layer(s) between the image and the latent code.",
                              minimum=1, maximum=8192)
    likelihood: Literal["auto", "bernoulli", "logistic"] = option(
        "auto", "Decoder distribution: bernoulli for binary images, logistic (discretized, per pixel and "
                "channel) for grayscale/RGB; auto: bernoulli for the embedded MNIST, logistic for --data DIR.")
    image_size: int = option(28, "Images are resized to this square size (a multiple of 4 for --arch conv).",
                             minimum=4, maximum=256)
    glimpses: int = option(16, "--arch draw: read/write steps T; the code is T x latent_size (paper: 64).",
                           minimum=1, maximum=256)
    read_size: int = option(2, "--arch draw: the read glimpse is N x N (paper on MNIST: 2).", minimum=1, maximum=64)
    write_size: int = option(5, "--arch draw: the written patch is N x N (paper on MNIST: 5).", minimum=1, maximum=64)
    channels: int = option(0, "Colour channels, learned from the data (0: not yet known).", flag=False)
    training_data: str = option("mnist-5k", "The --data the model was trained on: what `gencli evaluate` scores "
                                            "when --data is not given.", flag=False)


@dataclass
class TrainOptions:
    objective: Literal["elbo", "iwae"] = option("elbo", "Training bound: elbo (Kingma and Welling) or iwae "
                                                        "(Burda et al.; k importance samples, tighter).")
    k: int = option(5, "Importance samples per image for --objective iwae (k=1 is the ELBO).",
                    minimum=1, maximum=10_000)
    kl_warmup: int = option(0, "Steps over which the KL term's weight rises from 0 to 1 (0: no warm-up).",
                            minimum=0, maximum=100_000_000)


@dataclass
class SampleOptions:
    reconstruct: list[Path] = option([], "Image to encode and decode (repeatable): inputs beside reconstructions.")
    interpolate: list[Path] = option([], "Two images to walk between in latent space (give the flag twice).")
    interpolate_prior: bool = option(False, "Walk between two seeded draws from the prior instead of two "
                                            "images; one row per -n.")
    steps: int = option(10, "Frames per interpolation or --traverse row, ends included; interpolating two "
                            "images, the ends are exactly their reconstructions.", minimum=2, maximum=1000)
    traverse: bool = option(False, "Vary one latent dimension at a time around a point: one grid row per "
                                   "dimension, most informative dimensions first.")
    around: Path | None = option(None, "Image whose code --traverse varies around; default: the prior mean.")
    dims: int = option(10, "Rows of a --traverse grid (0: every latent dimension).", minimum=0, maximum=1024)
    span: float = option(3.0, "A --traverse row runs from -span to +span prior standard deviations.",
                         above=0, maximum=100)
    draw: bool = option(False, "Show random draws from p(x|z) instead of the decoder's means/probabilities.")
    canvases: bool = option(False, "--arch draw: show each sample being drawn, its canvas after every glimpse, "
                                   "one row per sample (-n rows).")


@dataclass
class EvalOptions:
    k: int = option(500, "Importance samples per test image for the log-likelihood estimate (Burda et al.).",
                    minimum=1, maximum=100_000)
    max_images: int = option(0, "Score at most this many test images (0: all of them).", minimum=0, maximum=1_000_000)


class VAE(LazyPlugin):
    name = "vae"
    implementation = "gencli_vae.model"  # build, prepare, loss, sample, evaluate (imports torch)
    modality = "image"
    summary = "Variational autoencoder (Kingma and Welling 2013) with IWAE training and likelihood (Burda 2015)."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs (MLP, 4 latents).",
                       config={"arch": "mlp", "latent_size": 4, "hidden_size": 32},
                       train={"steps": 50, "batch_size": 16}),
        "mlp": Preset("Burda et al.'s one-stochastic-layer model: 2 x 200 units each way, 50 latents (ELU here).",
                      config={"arch": "mlp", "hidden_size": 200, "latent_size": 50}, train={}),
        "draw": Preset("DRAW with attention (Gregor et al. 2015) at CPU size: 16 glimpses, read 2x2, write 5x5, "
                       "LSTMs of 256, 16 latents per glimpse.",
                       config={"arch": "draw", "glimpses": 16, "latent_size": 16, "hidden_size": 256},
                       train={"grad_clip": 10.0}),
    }
    # Adam 1e-3, batch 64: 10,000 steps (160 epochs of the 4,000 training digits) take about 7 minutes on one
    # busy CPU thread and reach a test NLL of about 94 nats. No clipping: the loss is in nats per image (about
    # 100), so a norm of 1 would clip every step.
    train_defaults = {"steps": 10000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "grad_clip": 0.0,
                      "log_every": 100, "save_every": 1000}
    default_data = "mnist-5k: 4,000 embedded MNIST training digits, binarized afresh every batch"
    bundled_weights = Path(__file__).parent / "weights"


plugin = VAE()
