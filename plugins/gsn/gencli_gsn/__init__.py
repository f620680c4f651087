"""gsn: generative stochastic networks (Bengio, Thibodeau-Laufer, Alain and Yosinski, ICML 2014).

A GSN learns the transition operator of a Markov chain whose stationary distribution is the data: a denoising
network with latent state (the visible layer and two tanh hidden layers updated like a deep Boltzmann
machine's Gibbs sweep, odd layers then even ones), with salt-and-pepper noise on the visible input and
Gaussian noise before and after the upper hidden activations. Walkback training unrolls the chain for several
steps from a training digit and asks every step's reconstruction to return to that digit, so the chain's own
wanderings are pulled back to the data. Sampling runs the chain; evaluation scores 10,000 chain states by the
GAN paper's Parzen window (gencli.metrics) and measures how the chain mixes between digit classes.

This module is the plugin's declaration and stays torch-free; ``model.py`` holds the network and the training
objective, ``chain.py`` the sampler and ``evaluation.py`` the figures (``api.py`` gathers them), imported on
first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gencli.plugin import LazyPlugin, Preset, option

WEIGHTS = Path(__file__).parent / "weights"


@dataclass
class Config:
    image_size: int = option(28, "Images are image_size x image_size grayscale, one visible unit per pixel.",
                             minimum=1, maximum=256)
    hidden: int = option(500, "Units in each hidden layer (the paper: 1500; 500 trains in 15 minutes on one CPU "
                              "thread and keeps the weights at 2.6 MB).", minimum=1, maximum=16_384)
    layers: int = option(2, "Hidden layers (the paper's GSN-2 has two).", minimum=1, maximum=8)
    salt_pepper: float = option(0.4, "Visible noise: the fraction of pixels set to 0 or 1 at random before "
                                     "each step (the paper's 0.4).", minimum=0, maximum=1)
    hidden_noise: float = option(2.0, "Standard deviation of the Gaussian noise added before and after the "
                                      "hidden tanh units (the paper's 2).", minimum=0, maximum=100)
    noiseless_first: bool = option(True, "No noise on the first hidden layer, as in the paper's code (its "
                                         "noiseless_h1): the visible reconstruction reads a clean h_1.")
    training_data: str = option("mnist-5k", "The --data the model was trained on: what `gencli evaluate` "
                                            "scores when --data is not given.", flag=False)


@dataclass
class TrainOptions:
    walkbacks: int = option(4, "Chain steps unrolled from each training digit, every step's reconstruction "
                               "scored against it (walkback; the paper unrolls 2 x layers steps).",
                            minimum=1, maximum=100)


@dataclass
class SampleOptions:
    burn_in: int = option(100, "Chain steps from noise (or --start) before the -n grid is taken.",
                          minimum=0, maximum=1_000_000)
    chain: int | None = option(None, "Show STEPS consecutive states of each chain (one row per -n chain), as the "
                                     "paper's figures of the chain do; no burn-in.", minimum=1, maximum=100_000)
    every: int = option(1, "With --chain: show every K-th state only.", minimum=1, maximum=100_000)
    start: Path | None = option(None, "Start the chains at this image (PNG/JPEG) instead of noise.")
    clamp_rows: int = option(0, "With --start: keep this many top rows of the image fixed through the chain "
                                "(inpainting: the chain fills in the rest).", minimum=0, maximum=256)


@dataclass
class EvalOptions:
    samples: int = option(10_000, "Chain states that become the Parzen window's kernels (the paper: 10,000).",
                          minimum=2, maximum=1_000_000)
    chains: int = option(100, "Parallel chains the --samples are taken from, each after --burn-in steps.",
                         minimum=1, maximum=100_000)
    burn_in: int = option(100, "Steps each chain runs from noise before its states are kept.",
                          minimum=0, maximum=1_000_000)
    mixing_steps: int = option(1000, "Length of the one chain whose digit classes (by gencli's digit "
                                     "classifier) give the mixing figures.", minimum=2, maximum=1_000_000)


class GSN(LazyPlugin):
    name = "gsn"
    implementation = "gencli_gsn.api"
    modality = "image"
    summary = "Generative stochastic network (Bengio et al. 2014): a walkback-trained Markov chain over digits."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.", config={"hidden": 16}, train={"steps": 40},
                       evaluate={"samples": 200, "chains": 20, "burn_in": 5, "mixing_steps": 50}),
    }
    # Batches of 100; Adam 1e-3 with the engine's cosine to 1e-4; 5,000 steps = 125 passes over the 4,000
    # digits (see the bundled card for the time).
    train_defaults = {"steps": 5000, "batch_size": 100, "lr": 1e-3, "warmup_steps": 0, "log_every": 50,
                      "save_every": 1000}
    default_data = "mnist-5k: the embedded 4,000 MNIST training digits (grey levels in [0, 1]), or --data DIR"
    bundled_weights = WEIGHTS / "gsn"


gsn = GSN()
