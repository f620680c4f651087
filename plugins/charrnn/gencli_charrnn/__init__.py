"""charrnn: a character-level LSTM language model (Graves 2013, section 3; Karpathy's char-rnn).

This module is the plugin's declaration and stays torch-free; the model lives in ``model.py`` and is
imported only when the plugin is used. On the CPU, sampling needs no torch at all (``numpy_sampler``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.plugin import LazyPlugin, Preset, option


@dataclass
class Config:
    vocab: str = option("", "Characters the model knows, in index order (learned from the data).", flag=False)
    embedding_size: int = option(64, "Character embedding width.", minimum=1, maximum=4096)
    hidden_size: int = option(256, "LSTM units per layer; 256 x 2 stays under 4 MB and reaches < 2 bits/char.",
                              minimum=1, maximum=8192)
    num_layers: int = option(2, "Stacked LSTM layers (Graves used up to 7; 2 is the char-rnn default).",
                             minimum=1, maximum=64)
    dropout: float = option(0.1, "Dropout between layers and before the output (regularises small corpora).",
                            minimum=0, below=1)


@dataclass
class TrainOptions:
    seq_length: int = option(128, "Characters per training sequence (truncated BPTT length).",
                             minimum=1, maximum=100_000)


@dataclass
class SampleOptions:
    prime: str = option("", "Text to start from; the sample continues it.")
    length: int = option(400, "Characters to generate.", minimum=0, maximum=10_000_000)
    temperature: float = option(0.8, "Softmax temperature: < 1 is more conservative, > 1 more varied.", short="-t",
                                above=0, maximum=100)
    top_k: int = option(0, "Sample only from the k likeliest characters (0: all).", minimum=0, maximum=100_000)


@dataclass
class EvalOptions:
    seq_length: int = option(256, "Characters per evaluation chunk (the LSTM state carries across chunks).",
                             minimum=1, maximum=100_000)


class CharRNN(LazyPlugin):
    name = "charrnn"
    implementation = "gencli_charrnn.model"  # build, prepare, loss, sample, evaluate (imports torch)
    modality = "text"
    summary = "Character-level LSTM text model (Graves 2013; Karpathy's char-rnn)."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"embedding_size": 16, "hidden_size": 32, "num_layers": 1, "dropout": 0.0},
                       train={"steps": 50, "batch_size": 8}),
        "small": Preset("The bundled model's recipe: 2 x 256 LSTM, 4,000 steps with the cosine over all of them "
                        "(about 7 minutes on a free 2-core CPU).", config={}, train={"steps": 4000, "decay_steps": 4000}),
        "large": Preset("3 x 512 LSTM, for a GPU or a long CPU run.",
                        config={"hidden_size": 512, "num_layers": 3, "dropout": 0.2},
                        train={"steps": 20000, "batch_size": 64}),
    }
    # Adam at 2e-3 with clipping at 1.0 is char-rnn's recipe; 2,000 steps fit in minutes on a laptop CPU.
    train_defaults = {"steps": 2000, "batch_size": 32, "lr": 2e-3, "grad_clip": 1.0, "warmup_steps": 50}
    default_data = "pydoc-topics: Python's language reference shipped with every CPython (~465k characters)"
    bundled_weights = Path(__file__).parent / "weights"

    def numpy_sampler(self, config: Config, options: SampleOptions) -> Any:
        """On the CPU the cell runs in numpy (``numpy_lstm.py``): `gencli sample charrnn` then needs no torch."""
        from gencli.data.text import Vocabulary
        from gencli.plugin import NumpySampler
        from gencli_charrnn import numpy_lstm

        numpy_lstm.check_sample_options(Vocabulary(config.vocab), options)  # before the weights load
        return NumpySampler(numpy_lstm.tensor_specs(config),
                            lambda weights, request: numpy_lstm.sample_arrays(weights, config, options, request))


plugin = CharRNN()
