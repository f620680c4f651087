"""handwriting: Graves (2013), "Generating Sequences With Recurrent Neural Networks", sections 4 and 5.

Online handwriting as a sequence of pen offsets (dx, dy, pen_up): an LSTM stack with a mixture density output
(the prediction network), and the synthesis network, whose soft attention window over the characters of a text
makes it write that text. Sampling has Graves' probability bias and priming with a style line.

This module is the plugin's declaration and stays torch-free; the model lives in ``model.py``, sampling in
``sampling.py``, the data in ``data.py``, ``strokes.py`` (IAM On-Line XML, --style files) and ``synthetic.py``
(the default, synthetic Hershey-font corpus), all imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gencli.plugin import LazyPlugin, Preset, option


@dataclass
class Config:
    arch: Literal["prediction", "synthesis"] = option(
        "synthesis", "synthesis: writes a given text through the attention window (section 5); prediction: "
                     "unconditional scribbles (section 4).")
    hidden_size: int = option(128, "LSTM units per layer (the paper: 400; 128 trains in under half an hour on a "
                                     "2-core CPU and writes legibly).", minimum=1, maximum=4096)
    num_layers: int = option(2, "Stacked LSTM layers (the paper: 3).", minimum=1, maximum=16)
    mixtures: int = option(10, "Bivariate Gaussians in the output mixture (the paper: 20).", minimum=1, maximum=100)
    window_gaussians: int = option(5, "Gaussians K of the attention window over the characters (the paper: 10).",
                                   minimum=1, maximum=100)
    alphabet: str = option("", "Characters the window knows, in index order (learned from the data).", flag=False)
    offset_scale: float = option(0.0, "Pen offsets are divided by this before the network sees them (the RMS "
                                      "move of the training data, learned).", flag=False)


@dataclass
class TrainOptions:
    max_points: int = option(300, "Pen points per training line at most (longer lines are cut).",
                             minimum=2, maximum=100_000)
    derivative_clip: bool = option(True, "Clip derivatives at the mixture outputs to +-100 and at the LSTM outputs "
                                         "to +-10, as in Graves' section 4.2 (on top of --grad-clip).")


@dataclass
class SampleOptions:
    text: str = option("hello world", "Text to write; '\\n' (or a real newline) starts another line. "
                                      "Synthesis network only.")
    bias: float = option(0.75, "Graves' probability bias: 0 samples the model as trained, higher is neater and "
                               "steadier (sharper mixture weights, sigmas shrunk by exp(-bias)).", short="-b",
                               minimum=0, maximum=100)
    temperature: float = option(1.0, "Divides the mixture and pen logits and scales the variances; < 1 is tamer.",
                                short="-t", above=0, maximum=100)
    style: Path | None = option(None, "Prime with this line's strokes to imitate its hand: JSON {\"text\", "
                                      "\"strokes\": [[dx, dy, pen_up], ...]}, CSV rows dx,dy,pen_up, or IAM XML.")
    style_text: str = option("", "Transcription of the --style strokes, if the file carries none.")
    length: int = option(0, "Pen points per line at most (0: 30 per character + 60; prediction network: 400).",
                         minimum=0, maximum=100_000)


@dataclass
class EvalOptions:
    max_lines: int = option(200, "Held-out lines scored at most.", minimum=1, maximum=100_000)


class Handwriting(LazyPlugin):
    name = "handwriting"
    implementation = "gencli_handwriting.api"  # build, prepare, loss, sample, evaluate (imports torch)
    modality = "strokes"
    summary = "Graves (2013) handwriting synthesis: LSTM + mixture density + attention window, written as SVG."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"hidden_size": 16, "num_layers": 2, "mixtures": 3, "window_gaussians": 2},
                       train={"steps": 20, "batch_size": 4}),
        "paper": Preset("Graves' synthesis network: 3 x 400 LSTM, 20 mixtures, 10 window Gaussians (GPU).",
                        config={"hidden_size": 400, "num_layers": 3, "mixtures": 20, "window_gaussians": 10},
                        train={"steps": 50000, "batch_size": 64, "lr": 1e-3}),
    }
    # The bundled model's recipe: about 0.5 s a step on one shared CPU thread, so 2,500 steps take ~25 minutes
    # (legible words appear after ~600). Adam with global-norm clipping; the paper used RMSProp with lr 1e-4.
    train_defaults = {"steps": 2500, "batch_size": 32, "lr": 3e-3, "grad_clip": 1.0, "warmup_steps": 100,
                      "log_every": 50, "save_every": 500}
    default_data = ("hershey: 4,000 SYNTHETIC lines of lowercase words drawn with the cursive Hershey font by 6 "
                    "simulated writers (made at first use, cached); or --data DIR of IAM On-Line lineStrokes XML")
    bundled_weights = Path(__file__).parent / "weights"


plugin = Handwriting()
