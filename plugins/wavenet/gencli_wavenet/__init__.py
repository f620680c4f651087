"""wavenet: raw audio one sample at a time (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio").

Dilated causal convolutions with gated tanh x sigmoid units, residual and skip paths and a 256-way softmax over
mu-law companded samples, globally conditioned on a speaker id. Generation uses the "Fast Wavenet" queues (Paine
et al. 2016): one queue of past activations per dilated layer, so a sample costs O(layers), and on the CPU the
whole generation loop is compiled with numba.

This module is the plugin's declaration and stays torch-free (and numba-free); the model lives in ``model.py``,
the samplers in ``sampling.py`` and ``fused.py``, the audio data in ``audio.py``, all imported lazily. On the CPU
`gencli sample wavenet` never imports torch: ``numpy_sampler`` hands the core the tensors to check
(``arch.py``) and the fused sampler, which runs on the weights as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gencli.plugin import LazyPlugin, Preset, option


@dataclass
class Config:
    sample_rate: int = option(16000, "Model sample rate in Hz; training audio is resampled to it.",
                              minimum=1000, maximum=192_000)
    layers_per_stack: int = option(10, "Dilated layers per stack; dilations 1, 2, 4 .. 2^(n-1) (paper: 10).",
                                   minimum=1, maximum=16)
    stacks: int = option(2, "Repeated stacks; 2 x 10 layers give a receptive field of 2,048 samples (128 ms).",
                         minimum=1, maximum=16)
    residual_channels: int = option(32, "Width of the residual path; 32 keeps batch-1 sampling > 2x real time "
                                         "on a 2-core CPU.", minimum=1, maximum=1024)
    gate_channels: int = option(32, "Channels of each gated tanh x sigmoid unit (the dilated conv has 2x this).",
                                minimum=1, maximum=1024)
    skip_channels: int = option(64, "Width of the skip path and of the relu-1x1-relu-1x1 output head.",
                                minimum=1, maximum=4096)
    num_speakers: int = option(0, "Speakers for global conditioning (0: learned from the data's sub-folders).",
                               minimum=0, maximum=10_000)
    speakers: list = option([], "Speaker names in id order (learned from the data).", flag=False)


@dataclass
class TrainOptions:
    window: int = option(2000, "Predicted samples per training window (each window also carries one receptive "
                               "field of context).", minimum=1, maximum=1_000_000)


@dataclass
class SampleOptions:
    seconds: float = option(1.0, "Length of each clip in seconds, in (0, 600].", above=0, maximum=600)
    # 0.9: the bundled model's samples at 0.9 have about the spectral flatness of the real corpus (0.06 against
    # 0.08); at 1.0 they are noisier (0.15).
    temperature: float = option(0.9, "Softmax temperature: 1 samples the model as trained, < 1 is tamer.", short="-t",
                                above=0, maximum=100)
    speaker: str = option("", "Speaker name or id; empty: clip i uses speaker i mod the number of speakers.",
                          complete_from="speakers")
    sampler: Literal["auto", "fused", "graph", "cached", "naive"] = option(
        "auto", "auto (fused on the CPU, graph on a GPU), fused (numba, CPU), graph (cached steps replayed as CUDA "
                "graphs; eager off a GPU), cached (torch queues) or naive (full recompute, very slow; for checking).")


@dataclass
class EvalOptions:
    max_seconds: float = option(60.0, "At most this much held-out audio is scored (evenly spread windows).",
                                above=0, maximum=100_000)
    rtf_seconds: float = option(1.0, "Seconds of audio sampled (batch 1) to measure the real-time factor; 0: skip.",
                                minimum=0, maximum=600)


class WaveNet(LazyPlugin):
    name = "wavenet"
    implementation = "gencli_wavenet.api"  # build, prepare, loss, sample, evaluate (imports torch and numba)
    modality = "audio"
    summary = "WaveNet raw-audio model (van den Oord et al. 2016) with a fast cached/compiled sampler."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs (2 x 4 layers, 8-16 channels).",
                       config={"layers_per_stack": 4, "stacks": 2, "residual_channels": 8, "gate_channels": 8,
                               "skip_channels": 16},
                       train={"steps": 50, "batch_size": 4}),
        "default": Preset("The default architecture: 2 x 10 layers, 32/32/64 channels.", config={}, train={}),
        "cpu": Preset("A recipe for a 2-core CPU: default architecture, 6,000 steps at lr 2e-3 decaying to "
                      "2e-4 (about 30 minutes).",
                      config={}, train={"steps": 6000, "decay_steps": 6000, "lr": 2e-3, "warmup_steps": 100}),
    }
    # Adam 1e-3 with clipping, batch 8 windows of 2,000 predicted samples (16k targets a step).
    train_defaults = {"steps": 20000, "batch_size": 8, "lr": 1e-3, "grad_clip": 1.0, "warmup_steps": 200}
    default_data = ("speech: sentences of Python's reference spoken by espeak-ng in 4 voices (about 4 minutes, made "
                    "at first use and cached); without espeak-ng: babble, synthetic formant babble")
    bundled_weights = Path(__file__).parent / "weights"

    def numpy_sampler(self, config: Config, options: SampleOptions) -> Any:
        """On the CPU, the fused sampler runs on numpy weights: `gencli sample wavenet` then needs no torch."""
        if options.sampler not in ("auto", "fused"):
            return None  # the torch samplers (and their checks)
        from gencli.plugin import NumpySampler
        from gencli_wavenet import arch

        arch.check_sample_options(options)  # a mistake is reported before the weights and numba load
        arch.speaker_ids(config, options.speaker, 1)

        def sample(weights: Any, request: Any) -> Any:
            from gencli_wavenet.fused import sample_arrays  # numba: imported only to sample

            return sample_arrays(weights, config, options, request)

        return NumpySampler(arch.tensor_specs(config), sample)


plugin = WaveNet()
