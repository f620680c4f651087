"""The plugin contract: everything a model family implements to live inside gencli.

A plugin is any object, published under the entry-point group ``gencli.plugins``, with the attributes and
methods of :class:`Plugin` below. First-party plugins are registered exactly like third-party ones.

Two halves, on purpose:

* the *declaration* (name, modality, the ``Config`` and option dataclasses, presets, bundled weights) is
  plain Python and must import without torch, so ``gencli --help``, ``gencli list`` and TAB completion stay
  fast and a broken model cannot take the CLI down;
* the *implementation* (``build``, ``prepare``, ``loss``, ``sample``, ``evaluate``) may import torch lazily,
  inside the methods.

The core owns everything around the model: argv parsing, weights resolution and validation, the training
loop (checkpoints, resume, progress, distribution) and writing outputs. A plugin never parses argv, never
touches the Hub and never writes output files; it returns values of the small types defined here.

Data flow: CLI -> registry -> weights -> ``plugin.build`` -> ``plugin.sample`` -> writers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # the contract itself stays importable without torch or numpy
    import numpy as np
    import torch

Modality = Literal["image", "text", "strokes", "audio", "video", "trajectories"]
MODALITIES: tuple[str, ...] = ("image", "text", "strokes", "audio", "video", "trajectories")


def option(default: Any, help: str, *, short: str | None = None, flag: bool = True,
           minimum: float | None = None, maximum: float | None = None, above: float | None = None,
           below: float | None = None, finite: bool = True, complete_from: str | None = None,
           complete_extra: tuple[str, ...] = (), reads_files: bool = False) -> Any:
    """Declare one option field: it becomes ``--field-name`` with ``help`` as its help text.

    ``short`` adds a one-letter alias (``"-t"``). ``flag=False`` keeps a field out of the command line
    (for example a vocabulary learned from the data, which lives in config.json but is never typed).

    Bounds of a number, checked by the parser (and for --config files) and shown in ``--help``: ``minimum``
    and ``maximum`` are inclusive, ``above`` and ``below`` exclusive. A float must also be finite (no nan or
    inf) unless ``finite=False``. Declare a maximum for every size and count: a 2**64 or 1e99 typed by
    mistake is then refused at once instead of starting work that cannot finish (an int without one is still
    held to 64 bits).

    ``complete_from`` names a list field of the model's config.json (e.g. ``"speakers"``) whose entries TAB
    completion offers for this flag, read from ``--weights`` when it is a local folder, else the bundled
    weights; ``complete_extra`` adds fixed values (e.g. ``("all",)``).

    ``reads_files=True`` marks a str option whose value may name local files (``Path`` options are known to
    without it): ``gencli serve`` never takes such a value from a browser.
    """
    metadata = {"help": help, "short": short, "flag": flag, "minimum": minimum, "maximum": maximum,
                "above": above, "below": below, "finite": finite, "complete_from": complete_from,
                "complete_extra": tuple(complete_extra), "reads_files": reads_files}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Preset:
    """A named starting point: architecture values and training option values, overridable by flags.

    ``evaluate`` sets EvalOptions for the evaluation that ends a run with this preset (the model card's
    figures): a smoke-test preset trains in seconds and should not then spend half a minute on AIS.
    """

    help: str
    config: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    evaluate: Mapping[str, Any] = field(default_factory=dict)


# ---- values a plugin returns from sample() ------------------------------------------------------------


@dataclass
class Images:
    """``pixels``: uint8 array (N, H, W, C) with C in {1, 3}, or 2 and 4 (greyscale and RGB with alpha: an
    --input image's transparency kept). A grid is laid out by the writer."""

    pixels: np.ndarray
    columns: int | None = None  # grid width; None lets the writer choose a near-square grid


@dataclass
class Text:
    """``chunks`` is consumed lazily, so text streams to stdout while it is being generated."""

    chunks: Iterable[str]


@dataclass
class Strokes:
    """One float array (T, 3) per line of handwriting: (dx, dy, pen_up) with pen_up 1 ending a stroke."""

    lines: list[np.ndarray]


@dataclass
class Audio:
    """``samples``: float array (N, T) in [-1, 1], one row per clip, at ``rate`` Hz."""

    samples: np.ndarray
    rate: int


@dataclass
class Clips:
    """Short videos: ``frames`` is a uint8 array (N, T, H, W, C) with C in {1, 3}, N clips of T frames each, to
    be played at ``fps`` frames per second.

    The writer (``gencli.video``) makes an animated GIF by default, the N clips tiled into one animated grid
    ``columns`` wide (None: near-square); a ``.png`` path (or ``--strip``) gives a strip, one row of T frames per
    clip; ``{t}`` in the path writes one PNG per frame and ``{i}`` one file per clip. GIF stores frame times in
    1/100 s, and a frame identical to the one before it is merged into it (the total time is kept).
    """

    frames: np.ndarray
    fps: float = 10.0
    columns: int | None = None


@dataclass
class Trajectories:
    """Moving agents on a court or pitch, e.g. the five players of a basketball team and the ball.

    ``positions``: float array (N, T, A, 2): N sequences (plays) of T frames, for each of A agents its (x, y)
    in feet (or metres) with 0 <= x <= court[0] and 0 <= y <= court[1]. ``roles``: A unique names, one per
    agent; the agent named ``"ball"`` is drawn dashed. ``court``: (length, width) of the area the agents move
    in; (47, 50) is a basketball half court, drawn with its lines (x runs from the baseline to the half-court
    line). ``rate``: frames per second. The writer (``gencli.trajectories``) draws an SVG court diagram (one
    path per agent, start and end marked), an animated GIF (one frame per time step) or CSV rows
    ``sequence,frame,agent,x,y``.
    """

    positions: np.ndarray
    roles: list[str]
    court: tuple[float, float] = (47.0, 50.0)
    rate: float = 6.25


Output = Images | Text | Strokes | Audio | Clips | Trajectories


# ---- values the core passes to a plugin -----------------------------------------------------------------


def no_progress(done: int, total: int, *, realtime_rate: float | None = None) -> None:
    """The default progress hook: does nothing."""


def no_description(line: str) -> None:
    """The default describe_data hook: does nothing."""


@dataclass
class SampleRequest:
    n: int  # how many samples (-n)
    seed: int  # already applied to torch's global RNG; also handy for a local generator
    device: torch.device  # the string "cpu" on a NumpySampler's torch-free path
    # Call progress(done, total) as long generation advances (e.g. audio samples per clip). With
    # realtime_rate (output units per second of real time, e.g. 16000 for 16 kHz audio) the core also shows
    # the real-time factor. The core draws a bar at a terminal and prints one summary line otherwise.
    progress: Callable[..., None] = no_progress
    # The one --input image this call works on, for a plugin that declares ``image_input`` (see ImageInput);
    # None for every other plugin (and for ImageInput(required=False) without --input).
    input: InputImage | None = None


# ---- image input: plugins that turn an image into an image ----------------------------------------------


@dataclass(frozen=True)
class ImageInput:
    """Declared as ``image_input = ImageInput(...)`` by a plugin whose ``sample`` works on an image the user
    gives (super-resolution, image-to-image translation). A plugin without the attribute takes no image.

    The core then adds ``--input PATH|DIR|-`` to `gencli sample PLUGIN` and leaves out the viewing-only
    ``--scale`` (so the plugin may declare an option of that name, e.g. a super-resolution factor):

    * ``PATH`` is one image file, ``DIR`` every PNG/JPEG directly in that folder (in name order), ``-`` one
      PNG or JPEG read from stdin.
    * Every input is checked before the model loads: readable, a format Pillow knows, at most
      ``max_pixels`` pixels (a decompression bomb is refused from its header; None: the core's limit,
      ``gencli.data.images.MAX_IMAGE_PIXELS``). A bad one ends the command with one error line.
    * Inputs are decoded one at a time, just before their turn (a folder of large photos holds one image in
      memory): EXIF orientation applied (``ImageOps.exif_transpose``), palette and 16-bit images brought to
      8 bits, then converted to ``channels``: 1 (greyscale), 3 (RGB) or None (1 for a greyscale file, 3
      otherwise). Transparency is never mixed into the colours: it comes separately, as ``InputImage.alpha``.
    * ``sample`` is called once per input, with ``request.input`` the decoded :class:`InputImage`, the torch
      generators reseeded with ``--seed`` (an output depends on its input and the seed, not on the other
      inputs) and ``request.n`` = ``-n``. It returns ``Images`` for that one input, e.g. (n, H', W', C); C may be
      2 or 4 (greyscale or RGB plus alpha) to keep the input's transparency. A large input is the plugin's to
      tile (``gencli.tiling.tiled``) so memory stays bounded.
    * Outputs: ``-o out.png`` or ``-o -`` (stdout) for one input; ``-o out/`` (a trailing slash or an existing
      folder) writes ``out/<stem>.png`` per input; ``{stem}`` in a path is each input's file name without its
      suffix (``stdin`` for ``-``); ``{i}`` still numbers the -n samples. Without ``-o`` one input goes to
      stdout when that is a pipe, else to ``<stem>-<plugin>.png`` (never replacing a file); a folder of inputs
      needs ``-o``. Two inputs mapped to one output, or an output that would replace an input, are refused
      before any work. Each output's provenance records its input (``"input": {"name", "sha256"}``).
    * ``required=False``: without ``--input``, ``sample`` is called once with ``request.input`` None (e.g. to
      work on the plugin's own held-out images).
    """

    channels: int | None = 3
    required: bool = True
    max_pixels: int | None = None
    help: str = "Image to work on: a PNG/JPEG file, a folder of them (one output each), or '-' for stdin."


@dataclass
class InputImage:
    """One decoded ``--input`` image, as ``SampleRequest.input`` carries it to the plugin."""

    pixels: np.ndarray  # uint8 (H, W, C), C = ImageInput.channels (1 or 3), upright (EXIF applied)
    alpha: np.ndarray | None  # uint8 (H, W) when the file has transparency, else None
    name: str  # the file's name, "-" for stdin (for messages and provenance)
    stem: str  # the name without its suffix ("stdin" for -), what {stem} becomes
    sha256: str  # of the file's bytes, recorded in the output's provenance


@dataclass
class NumpySampler:
    """A torch-free way to sample on the CPU, offered by a plugin's optional ``numpy_sampler`` member.

    ``tensors`` lists every tensor of ``build(config).state_dict()``: name -> (shape, dtype name as torch spells
    it without the prefix, e.g. ``"float32"``). The core checks the safetensors header against it and every
    float value for NaN/Inf, exactly as it checks a built model, then reads the file with ``safetensors.numpy``
    and calls ``sample(weights, request)`` with the arrays by name (read-only) and a request whose ``device`` is
    the string ``"cpu"``. It returns what ``Plugin.sample`` would, and the provenance is the same.
    """

    tensors: Mapping[str, tuple[tuple[int, ...], str]]
    sample: Callable[[Mapping[str, np.ndarray], SampleRequest], Output]


@dataclass
class LatentEditor:
    """What an image GAN offers the interactive editor (``gencli.editing``, ``gencli serve``), from its optional
    ``latent_editor`` member.

    ``generate`` maps latents (B, z_dim) float32 to images (B, C, H, W) in [0, 1] and must be differentiable
    (the edit search optimises latents through it) and per-sample (eval mode: an image depends on its own latent
    only). ``latent_of_seed(S)`` is the latent that ``gencli sample PLUGIN -n 1 --seed S`` draws, so an edit
    starts from the picture the user saw. ``real_images()`` gives the training images, uint8 (M, C, H, W), for
    the nearest-real-image check beside the candidates."""

    z_dim: int
    generate: Callable[[Any], Any]
    latent_of_seed: Callable[[int], Any]
    real_images: Callable[[], Any]


@dataclass
class EvalRequest:
    data: str | None  # --data as typed, None for the plugin's default held-out split
    device: torch.device
    seed: int
    # Call progress(done, total) as a long evaluation advances (images scored, AIS temperatures, ...): the
    # core shows a bar with an ETA at a terminal and a line every few seconds otherwise.
    progress: Callable[..., None] = no_progress
    # Call describe_data(line) with what was scored (data set, split, how many items, e.g. "mnist test split
    # (10,000 images: ...)"): `gencli evaluate` prints it beside the figures and the model card records it.
    describe_data: Callable[[str], None] = no_description


@dataclass
class Prepared:
    """What ``prepare`` returns: the final architecture config (e.g. with a vocabulary learned from the data)
    and the training batches."""

    config: Any  # an instance of the plugin's Config
    data: TrainData
    description: str  # one line for the model card, e.g. "pydoc-topics (embedded, 465,000 characters)"


@runtime_checkable
class TrainData(Protocol):
    """Random-access training batches.

    ``batch`` must depend only on the generator it is given: the engine seeds a fresh generator from
    (run seed, step), which makes the data position of a run simply its step number, so a resumed or
    distributed run sees exactly the batches an uninterrupted single-process run would.
    Returned tensors have the batch as their first dimension (a tensor, a tuple or a dict of tensors).
    """

    def batch(self, generator: torch.Generator, batch_size: int) -> Any: ...


@runtime_checkable
class Plugin(Protocol):
    """What every plugin provides. Reference docs for each member follow."""

    name: str  # command-line name, e.g. "charrnn"
    modality: Modality
    summary: str  # one line for `gencli list` and --help

    Config: type  # dataclass: the architecture, saved as config.json
    TrainOptions: type  # dataclass of plugin-specific training flags (may be empty)
    SampleOptions: type  # dataclass of sampling flags (--temperature, --length, ...)
    EvalOptions: type  # dataclass of evaluation flags

    presets: Mapping[str, Preset]  # may be empty
    train_defaults: Mapping[str, Any]  # overrides of the engine's defaults: steps, batch_size, lr, ...
    default_data: str  # what `--data` means when omitted, one line
    bundled_weights: Path | None  # folder with config.json + model.safetensors, or None
    # Optional: ``image_input = ImageInput(...)`` for a plugin whose sample takes --input images (see ImageInput).

    def build(self, config: Any) -> torch.nn.Module:
        """Construct the model for ``config``; must also work under ``torch.device("meta")``."""
        ...

    def prepare(self, data: str | None, config: Any, options: Any) -> Prepared:
        """Load training data (``data`` as typed after --data) and finalise the config."""
        ...

    def loss(self, model: torch.nn.Module, batch: Any, options: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """One training objective evaluation: scalar loss to minimise and metrics to log."""
        ...

    def sample(self, model: torch.nn.Module, config: Any, options: Any, request: SampleRequest) -> Output:
        """Generate ``request.n`` samples with the model in eval mode."""
        ...

    def evaluate(self, model: torch.nn.Module, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
        """Held-out figures, e.g. {"bits_per_char": 1.9}. Keys are snake_case with the unit in the name; counts
        (characters, images, ...) are ints, so they print as counts."""
        ...


class OptionalMembers(Protocol):
    """Members a plugin may add; the engine looks each one up with ``getattr`` and falls back to its default.

    ``supports_bf16``: ``False`` keeps any ``--precision`` from autocasting this plugin (fp32 instead); ``True``
    says it was checked to train as well in bf16, so ``--precision auto`` picks bf16 on a CPU that computes it
    natively (AVX512-BF16, AMX; ``gencli.precision``); undeclared, auto means bf16 on CUDA only, and
    ``cpu_fp32_reason`` (a short phrase) may say why, for the reason run.json and the model card record.

    ``find_unused_parameters``: ``True`` for a model some of whose parameters get no gradient in some steps (a
    phase in which a player sits out or is held), so that ``--nproc`` runs DDP with unused-parameter detection;
    DDP otherwise stops at the first such step.
    """

    def configure_optimizer(self, model: torch.nn.Module, lr: float, options: Any) -> torch.optim.Optimizer:
        """The optimizer for ``model``, given the starting ``lr`` and the run's ``TrainOptions``. Default: AdamW.
        The engine still sets every parameter group's lr from its schedule at each step."""
        ...

    def gradients(self, model: torch.nn.Module, batch: Any, options: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Instead of differentiating ``loss``: set ``.grad`` of every trainable parameter directly and return the
        value to report (a scalar tensor) and metrics, like ``loss``. Runs under ``torch.no_grad()`` and the run's
        autocast. For models whose update is a closed-form statistic rather than the gradient of a loss that
        autograd computes cheaply (contrastive divergence). The engine keeps everything else: the optimizer,
        the lr schedule, clipping, checkpoints, and averaging the gradients over processes.
        ``loss`` stays the definition (the contract tests check that the two agree)."""
        ...

    def latent_editor(self, model: torch.nn.Module, config: Any, options: Any) -> LatentEditor:
        """For an image GAN: its generator as a differentiable function of the latent, for iGAN-style editing
        (``gencli serve``'s editing panel). ``options`` are the plugin's ``SampleOptions`` (e.g. the class of a
        conditional GAN)."""
        ...

    def initialize(self, model: torch.nn.Module, options: Any) -> None:
        """Set a fresh training run's starting weights in place, after ``build`` and before the first step: e.g.
        fine-tune from another run (srgan's ``--stage gan --init RUN``). Skipped on ``--resume`` (the checkpoint
        holds the weights); called in every process of a distributed run. Read other weights through
        ``gencli.weights`` (it resolves run folders and Hub ids, and checks the files), never with pickle."""
        ...

    def training_work(self, options: Any) -> Callable[[int], float]:
        """For a run whose steps differ in cost: ``work(step)``, the work of the first ``step`` steps in units of
        the dearest step (nondecreasing, ``work(0) == 0``), from the run's ``TrainOptions``; the progress ETA
        then scales the pace measured so far by the work left, not the steps left. Default: every step costs
        the same (``work(step) == step``)."""
        ...

    def numpy_sampler(self, config: Any, options: Any) -> NumpySampler | None:
        """A torch-free sampler for ``config`` and the ``SampleOptions`` given, or None to build the torch model
        and call ``sample``. Asked only when the command certainly runs on the CPU (``--device cpu``, or ``auto``
        on a machine without a usable GPU); it must not import torch, and should be quick (heavy imports such as
        numba belong inside ``NumpySampler.sample``). It pays where importing torch costs more than sampling:
        a command on a small model then starts in a fraction of a second instead of two or more. The contract
        tests check ``tensors`` against ``build``; the plugin's own tests should check that both paths agree on
        the same weights. ``GENCLI_SAMPLE_TORCH=1`` makes the core ignore this member (for comparisons)."""
        ...


class LazyPlugin:
    """Optional base class for a plugin declaration: ``build``, ``prepare``, ``loss``, ``sample`` and ``evaluate``
    are the functions of those names in the module named by ``implementation``, imported on first use.

    The declaration stays torch-free without five hand-written forwarding methods::

        class CharRNN(LazyPlugin):
            name = "charrnn"
            implementation = "gencli_charrnn.model"   # defines build(config), prepare(...), loss(...), ...
    """

    implementation: str

    def _function(self, name: str) -> Callable[..., Any]:
        import importlib

        return getattr(importlib.import_module(self.implementation), name)

    def build(self, config: Any) -> Any:
        return self._function("build")(config)

    def prepare(self, data: str | None, config: Any, options: Any) -> Prepared:
        return self._function("prepare")(data, config, options)

    def loss(self, model: Any, batch: Any, options: Any) -> Any:
        return self._function("loss")(model, batch, options)

    def sample(self, model: Any, config: Any, options: Any, request: SampleRequest) -> Output:
        return self._function("sample")(model, config, options, request)

    def evaluate(self, model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
        return self._function("evaluate")(model, config, options, request)


def option_fields(options_cls: type) -> list[dataclasses.Field]:
    """The fields of an options/config dataclass that become command-line flags."""
    return [f for f in dataclasses.fields(options_cls) if f.metadata.get("flag", True)]


def defaults_of(options_cls: type) -> dict[str, Any]:
    """Default values of every field of a dataclass (default_factory included)."""
    values = {}
    for f in dataclasses.fields(options_cls):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return values
