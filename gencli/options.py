"""Turn the core's flags and a plugin's option dataclasses into real, typed, documented Typer options.

Every generated parameter defaults to ``None`` so the caller can tell "not typed" from "typed the default";
that is what lets flags override a --config file and a preset, and lets --resume keep a run's settings.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from gencli.plugin import option_fields


@dataclass(frozen=True)
class Flag:
    """One command-line flag: ``dest`` is the Python name, ``group`` says which dataclass receives it."""

    dest: str
    type: Any
    help: str
    group: str = "core"
    short: str | None = None
    default: Any = None  # shown in --help only; the real default is applied when options are resolved
    show_default: bool = True
    hidden: bool = False
    negatable: bool = True  # bool flags only: also offer --no-NAME (to undo a preset or --config value)
    # Bounds of a number (see gencli.plugin.option): inclusive minimum/maximum, exclusive above/below; floats
    # must be finite unless finite=False. The parser enforces them and --help shows them.
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    finite: bool = True
    parse: Callable[[str], Any] | None = None  # a str flag's own check (raises ValueError with the reason)
    # TAB completion only (a value outside them is still the command's to judge): fixed values, and a list
    # field of the model's config.json (read from a local --weights folder, else the bundled weights).
    completions: tuple[str, ...] = ()
    complete_from: str | None = None
    weights_folder: Path | None = None  # the plugin's bundled weights, for complete_from

    @property
    def long(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def label(self) -> str:
        return self.short if len(self.dest) == 1 and self.short else self.long


WEIGHTS_HELP = "Run folder, model.safetensors file or Hub repo id org/name[@revision]; default: the bundled weights."
def check_nnodes(text: str) -> str:
    """torchrun's --nnodes: N, or MIN:MAX for an elastic job, with 1 <= MIN <= MAX <= 4096."""
    parts = text.strip().split(":")
    if len(parts) > 2 or not all(part.isdigit() for part in parts):
        raise ValueError("must be a node count N or a range MIN:MAX")
    low, high = int(parts[0]), int(parts[-1])
    if not 1 <= low <= high <= 4096:
        raise ValueError("node counts must be at least 1 and at most 4096, MIN no more than MAX")
    return text.strip()


MAX_STEPS = 10**8  # a billion steps is years of training at any size here; more is a typo
COMMON = {
    "seed": Flag("seed", int, "Random seed; the same seed gives the same output.", default=0, minimum=0,
                 maximum=2**32 - 1),  # numpy's seed range: the widest every generator here accepts as it is
    "device": Flag("device", str, "auto, cpu, cuda or cuda:N.", default="auto"),
    "quiet": Flag("quiet", bool, "No progress or messages on stderr.", short="-q", default=False, negatable=False),
    "weights": Flag("weights", str, WEIGHTS_HELP, show_default=False),
    "revision": Flag("revision", str, "Hub branch, tag or full 40-hex commit for --weights.", show_default=False),
    "threads": Flag("threads", int, "CPU threads for torch; default: OMP_NUM_THREADS if set, else one per free "
                                    "core for training and one for sampling (measured fastest for these models).",
                    show_default=False, minimum=1, maximum=1024),
}
SAMPLE_FLAGS = [
    Flag("output", str, "Output path; '-' for stdout; '{i}' in the name writes one file per sample. An existing "
         "file is replaced (mode kept; read-only files refused), a pipe or device written into.",
         short="-o", show_default=False),
    Flag("n", int, "Number of samples.", short="-n", default=1, minimum=1, maximum=10_000),
    COMMON["seed"], COMMON["weights"], COMMON["revision"], COMMON["device"], COMMON["threads"], COMMON["quiet"],
]
# Only image (and video) plugins get --scale: a WAV or a text has no pixels to enlarge.
IMAGE_SAMPLE_FLAGS = [
    Flag("scale", int, "Enlarge images K times (nearest neighbour: every pixel a K x K block), for viewing.",
         default=1, minimum=1, maximum=64),
]
# Clips (video plugins) get --scale too, and --strip: a PNG strip of frames where no file name says which format.
VIDEO_SAMPLE_FLAGS = IMAGE_SAMPLE_FLAGS + [
    Flag("strip", bool, "Write the clips as a PNG strip of frames (one row per clip) instead of an animated GIF, "
         "for stdout or the default name; '-o NAME.png' does the same.", default=False, negatable=False),
]
EVALUATE_FLAGS = [
    COMMON["weights"], COMMON["revision"],
    Flag("data", str, "Evaluation data: file, folder or named embedded set; default: the held-out split.",
         show_default=False),
    Flag("json", bool, "Print one JSON object on stdout.", default=False, negatable=False),
    COMMON["seed"], COMMON["device"], COMMON["threads"], COMMON["quiet"],
]
TRAIN_FLAGS = [
    Flag("data", str, "Training data: file, folder or named embedded set.", show_default=False),
    Flag("out", Path, "Run folder (a Hub repo layout), new or empty (or a run, with --resume); default: "
         "runs/PLUGIN.", show_default=False),
    Flag("steps", int, "Where to stop (with --resume: the new total). The lr schedule follows "
                       "--decay-steps, not --steps, so a run can be extended without rewriting its past.",
         minimum=1, maximum=MAX_STEPS),
    Flag("batch_size", int, "Global batch size (split across --nproc processes).", minimum=1, maximum=65_536),
    Flag("lr", float, "Peak learning rate.", above=0, maximum=1e38),  # float32 holds no larger lr
    Flag("warmup_steps", int, "Linear lr warm-up steps.", minimum=0, maximum=MAX_STEPS),
    Flag("decay_steps", int, "Step at which the cosine decay reaches lr/10 (0: constant lr); default: the "
                             "recipe's steps (plugin or --preset), not a typed --steps.", minimum=0, maximum=MAX_STEPS),
    COMMON["seed"], COMMON["device"], COMMON["threads"],
    Flag("preset", str, "Named preset of architecture and training values (see `gencli info`).",
         show_default=False),
    Flag("config", Path, "TOML file of option values (any flag name); typed flags override it.",
         show_default=False),
    Flag("resume", bool, "Continue the run in --out from its last checkpoint.", default=False, negatable=False),
    Flag("save_every", int, "Checkpoint every N steps (and always at the end).", minimum=1, maximum=MAX_STEPS),
    Flag("log_every", int, "Write metrics and progress lines every N steps.", minimum=1, maximum=MAX_STEPS),
    Flag("grad_clip", float, "Clip the global gradient norm to this value (0: off).", minimum=0, maximum=1e6),
    Flag("precision", typing.Literal["auto", "fp32", "bf16"], "auto: bf16 autocast on CUDA, and on a CPU with "
         "native bf16 (AVX512-BF16, AMX) for plugins that declare bf16 support; else fp32."),
    Flag("compile", bool, "Compile the model with torch.compile."),
    Flag("on_nonfinite", typing.Literal["stop", "rollback"],
         "On a NaN/Inf loss: stop keeping the last good checkpoint, or roll back to it with half the lr."),
    Flag("nproc", int, "Processes to train with (torch.distributed; gloo on the CPU, nccl on CUDA).", default=1,
         minimum=1, maximum=1024),
    Flag("nnodes", str, "torchrun --nnodes (N, or MIN:MAX for an elastic job), for multi-node training.",
         show_default=False, parse=check_nnodes),
    Flag("node_rank", int, "torchrun --node-rank.", show_default=False, minimum=0, maximum=4095),
    Flag("rdzv_endpoint", str, "torchrun --rdzv-endpoint host:port.", show_default=False),
    COMMON["quiet"],
]
CORE_FLAGS: dict[str, frozenset[str]] = {
    "sample": frozenset(f.dest for f in SAMPLE_FLAGS + VIDEO_SAMPLE_FLAGS),
    "evaluate": frozenset(f.dest for f in EVALUATE_FLAGS),
    "train": frozenset(f.dest for f in TRAIN_FLAGS),
}


MODALITY_SAMPLE_FLAGS = {"image": IMAGE_SAMPLE_FLAGS, "video": VIDEO_SAMPLE_FLAGS}


def dataclass_flags(cls: type, group: str) -> list[Flag]:
    """One Flag per command-line field of an option dataclass.

    Raises ValueError (one line) when a field's type cannot become a flag, so a plugin with such a field is
    reported as broken instead of taking the CLI down when Typer builds the command.
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception as error:  # an annotation naming something that is not importable
        raise ValueError(f"{cls.__name__}: unresolvable type annotation ({error})") from None
    flags = []
    for f in option_fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        flag_type = flag_type_of(hints[f.name])
        if flag_type is None:
            label = getattr(hints[f.name], "__name__", None) or str(hints[f.name]).replace("typing.", "")
            raise ValueError(f"{cls.__name__}.{f.name}: type {label} cannot be a command-line flag "
                             f"(use str, int, float, bool, Path, a Literal of strings, or a list of str, int, float or Path)")
        short = f.metadata.get("short")
        if short is not None and not (isinstance(short, str) and len(short) == 2 and short[0] == "-"
                                      and short[1].isalpha()):
            raise ValueError(f"{cls.__name__}.{f.name}: short alias must look like '-x', got {short!r}")
        bounds = {key: f.metadata.get(key) for key in ("minimum", "maximum", "above", "below")}
        if any(value is not None for value in bounds.values()) and _number_type(flag_type) is None:
            raise ValueError(f"{cls.__name__}.{f.name}: bounds are for int and float fields")
        flags.append(Flag(f.name, flag_type, str(f.metadata.get("help", "")), group=group, short=short,
                          default=default, finite=bool(f.metadata.get("finite", True)),
                          completions=tuple(f.metadata.get("complete_extra") or ()),
                          complete_from=f.metadata.get("complete_from"), **bounds))
    return flags


def plugin_flags(verb: str, plugin: Any) -> list[Flag]:
    """Every flag of `gencli VERB PLUGIN`: the core's, then the plugin's, with what only this plugin knows
    (its preset names and bundled weights for completion; --scale for image outputs)."""
    if verb == "sample":
        core = SAMPLE_FLAGS + MODALITY_SAMPLE_FLAGS.get(plugin.modality, [])
        flags = core + dataclass_flags(plugin.SampleOptions, "SampleOptions")
    elif verb == "evaluate":
        flags = EVALUATE_FLAGS + dataclass_flags(plugin.EvalOptions, "EvalOptions")
    else:
        flags = TRAIN_FLAGS + dataclass_flags(plugin.Config, "Config") + dataclass_flags(plugin.TrainOptions,
                                                                                         "TrainOptions")
    if verb == "sample" and getattr(plugin, "image_input", None) is not None:
        # Image in, image out: --input, and no viewing --scale (the name is free for the plugin's own factor).
        kept = [f for f in flags if not (f.group == "core" and f.dest == "scale")]
        flags = [input_flag(plugin.image_input)] + [dataclasses.replace(f, help=OUTPUT_FOR_INPUTS_HELP)
                                                    if f.group == "core" and f.dest == "output" else f for f in kept]
    weights = getattr(plugin, "bundled_weights", None)
    specific = []
    for flag in flags:
        if flag.dest == "preset":
            flag = dataclasses.replace(flag, completions=tuple(getattr(plugin, "presets", {}) or ()))
        if flag.complete_from and weights is not None:
            flag = dataclasses.replace(flag, weights_folder=Path(weights))
        specific.append(flag)
    return specific


OUTPUT_FOR_INPUTS_HELP = ("Output path; '-' for stdout; 'DIR/' (or an existing folder) for DIR/<stem>.png per input; "
                          "'{stem}' in the name is each input's name without its suffix. An input is never "
                          "replaced; another existing file is (mode kept; read-only files refused).")


def input_flag(declared: Any) -> Flag:
    """``--input PATH|DIR|-`` of a plugin that declares ``image_input`` (gencli.plugin.ImageInput)."""
    return Flag("input", str, declared.help, short="-i", show_default=False)


def core_flag_names(verb: str, plugin: Any) -> frozenset[str]:
    """The core's flags of `gencli VERB PLUGIN`, which the plugin's own options must not shadow."""
    if verb == "sample" and getattr(plugin, "image_input", None) is not None:
        return (CORE_FLAGS[verb] - {"scale"}) | {"input"}
    return CORE_FLAGS[verb]


# ---- bounds ---------------------------------------------------------------------------------------------

INT64 = (-(2**63), 2**63 - 1)  # what torch and numpy hold: the bound of an int flag that declares none


def _number_type(flag_type: Any) -> type | None:
    return flag_type if flag_type in (int, float) else None


def problem_with(flag: Flag, value: Any) -> str | None:
    """Why ``value`` breaks the flag's bounds (``"must be at most 16"``), or None when it is fine."""
    kind = _number_type(flag.type)
    if kind is None or value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be an integer"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        if flag.finite and not math.isfinite(value):
            return "must be a finite number"
    low = flag.minimum if flag.minimum is not None else (INT64[0] if kind is int else None)
    high = flag.maximum if flag.maximum is not None else (INT64[1] if kind is int else None)
    if low is not None and value < low:
        return f"must be at least {_number(low)}"
    if flag.above is not None and not value > flag.above:
        return f"must be greater than {_number(flag.above)}"
    if high is not None and value > high:
        return f"must be at most {_number(high)}"
    if flag.below is not None and not value < flag.below:
        return f"must be less than {_number(flag.below)}"
    return None


def check_value(flag: Flag, value: Any, origin: str) -> Any:
    """``value`` when it keeps the flag's bounds, else a one-line UsageError naming ``origin`` (e.g. a TOML file)."""
    problem = problem_with(flag, value)
    if problem is not None:
        from gencli.errors import UsageError

        raise UsageError(f"{origin}: '{flag.dest}' {problem}, not {value!r}")
    return value


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else f"{value:g}"


def bounds_text(flag: Flag) -> str:
    """The declared bounds as --help shows them: ``1<=x<=16``, ``0<x<=600``, ``x>=0``; '' when none."""
    lower = (f"{_number(flag.minimum)}<=" if flag.minimum is not None
             else f"{_number(flag.above)}<" if flag.above is not None else "")
    upper = (f"<={_number(flag.maximum)}" if flag.maximum is not None
             else f"<{_number(flag.below)}" if flag.below is not None else "")
    return f"{lower}x{upper}" if lower or upper else ""


def _parser(flag: Flag) -> Callable[[str], Any] | None:
    """The text -> value function Typer calls for this flag; its errors become one `gencli: error:` line."""
    kind = _number_type(flag.type)
    if kind is None and flag.parse is None:
        return None

    def parse(text: Any) -> Any:
        if not isinstance(text, str):  # a default or an already parsed value
            return text
        if flag.parse is not None:
            try:
                return flag.parse(text)
            except ValueError as error:
                raise typer.BadParameter(f"{error}, not {text!r}") from None
        try:
            value = kind(text.strip())  # type: ignore[misc]
        except ValueError:  # also a 5,000-digit integer, which int() refuses
            name = "an integer" if kind is int else "a number"
            raise typer.BadParameter(f"{text[:40]!r} is not {name}") from None
        problem = problem_with(flag, value)
        if problem is not None:
            raise typer.BadParameter(f"{problem}, not {text.strip()[:40]}")
        return value

    parse.__name__ = kind.__name__ if kind is not None else "text"
    return parse


def _completer(flag: Flag) -> Callable[..., list[str]] | None:
    if not flag.completions and not flag.complete_from:
        return None

    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        values = list(flag.completions)
        if flag.complete_from:
            values += config_list(ctx.params.get("weights"), flag.weights_folder, flag.complete_from)
        return [value for value in dict.fromkeys(values) if value.startswith(incomplete)]

    return complete


def config_list(weights: Any, bundled: Path | None, field: str) -> list[str]:
    """The string entries of ``field`` in config.json of a local ``weights`` folder (or the one beside a
    model.safetensors file), else of the bundled weights; [] when there is none. Never reaches the Hub:
    completion runs on every TAB."""
    import json

    folder = bundled
    if weights:
        local = Path(str(weights)).expanduser()
        if local.suffix == ".safetensors":
            local = local.parent
        folder = local if local.is_dir() else None
    if folder is None:
        return []
    try:
        values = json.loads((folder / "config.json").read_text(encoding="utf-8")).get(field, [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(value) for value in values] if isinstance(values, list) else []


SCALAR_TYPES = (str, int, float, bool, Path)


def flag_type_of(hint: Any) -> Any:
    """The flag type for a field annotation (``X | None`` counts as X), or None when it is unsupported.

    ``list[X]`` of a scalar X is a repeatable flag: ``--reconstruct a.png --reconstruct b.png``.
    """
    if hint in SCALAR_TYPES:
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return hint if len(args) == 1 and args[0] in SCALAR_TYPES and args[0] is not bool else None
    if origin is typing.Literal:
        return hint if args and all(isinstance(a, str) for a in args) else None
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return flag_type_of(rest[0]) if len(rest) == 1 else None
    return None


def _help_text(flag: Flag) -> str:
    # Typer renders help as rich markup: escape it, so a plugin's "[0, 1]" or "org/name[@rev]" survives.
    from rich.markup import escape

    text = flag.help
    extra = []
    # "[default: False]" on --quiet says nothing; 0 is a real default (note 0 == False in Python)
    if flag.show_default and not (flag.default is None or flag.default is False or flag.default == ""):
        # Shown here rather than through Typer's show_default, whose string form prints as "(value)".
        extra.append(f"default: {flag.default}")
    if bounds_text(flag):
        extra.append(bounds_text(flag))
    if extra:
        text = f"{text} [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
    return escape(text)


def _annotation(flag: Flag) -> Any:
    if len(flag.dest) == 1 and flag.short:
        names = [flag.short]  # "-n", not "--n"
    else:
        long = flag.long
        if flag.type is bool and flag.negatable:
            long = f"{long}/--no-{long[2:]}"
        names = [long] + ([flag.short] if flag.short else [])
    settings: dict[str, Any] = {}
    if flag.type is bool:
        settings["metavar"] = ""  # an on/off switch takes no value: no "<bool>" column in --help
    parser = _parser(flag)
    if parser is not None:
        settings["parser"] = parser
    completer = _completer(flag)
    if completer is not None:
        settings["autocompletion"] = completer
    info = typer.Option(
        *names,
        help=_help_text(flag),
        show_default=False,
        hidden=flag.hidden,
        rich_help_panel="Core options" if flag.group == "core" else _PANELS.get(flag.group),
        **settings,
    )
    return Annotated[Optional[flag.type], info]


_PANELS = {
    "Config": "Architecture",
    "TrainOptions": "Training options",
    "SampleOptions": "Sampling options",
    "EvalOptions": "Evaluation options",
}


def make_command(flags: list[Flag], body: Callable[[dict[str, Any]], None], doc: str) -> Callable[..., None]:
    """A function whose signature Typer reads as ``flags``; calling it hands ``body`` {dest: value|None}."""
    seen: dict[str, Flag] = {}
    for flag in flags:
        if flag.dest in seen:
            raise ValueError(f"flag {flag.long} is declared twice ({seen[flag.dest].group} and {flag.group})")
        seen[flag.dest] = flag
    parameters = [
        inspect.Parameter(flag.dest, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_annotation(flag))
        for flag in flags
    ]

    def command(**values: Any) -> None:
        body(values)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__doc__ = doc
    return command


def split_by_group(flags: list[Flag], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{group: {dest: value}} for the values the user actually typed (not None)."""
    groups: dict[str, dict[str, Any]] = {}
    by_dest = {flag.dest: flag for flag in flags}
    for dest, value in values.items():
        if value is not None and value != []:  # Typer gives an untyped repeatable flag as []
            groups.setdefault(by_dest[dest].group, {})[dest] = value
    return groups
