"""Turn the core's flags and a plugin's option dataclasses into real, typed, documented Typer options.

Every generated parameter defaults to ``None`` so the caller can tell "not typed" from "typed the default";
that is what lets flags override a --config file and a preset, and lets --resume keep a run's settings.
"""

from __future__ import annotations

import dataclasses
import inspect
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

    @property
    def long(self) -> str:
        return "--" + self.dest.replace("_", "-")


WEIGHTS_HELP = "Run folder, model.safetensors file or Hub repo id org/name[@revision]; default: the bundled weights."
COMMON = {
    "seed": Flag("seed", int, "Random seed; the same seed gives the same output.", default=0),
    "device": Flag("device", str, "auto, cpu, cuda or cuda:N.", default="auto"),
    "quiet": Flag("quiet", bool, "No progress or messages on stderr.", short="-q", default=False, negatable=False),
    "weights": Flag("weights", str, WEIGHTS_HELP, show_default=False),
    "revision": Flag("revision", str, "Hub branch, tag or full 40-hex commit for --weights.", show_default=False),
    "threads": Flag("threads", int, "CPU threads for torch; default: OMP_NUM_THREADS if set, else one per free "
                                    "core for training and one for sampling (measured fastest for these models).",
                    show_default=False),
}
SAMPLE_FLAGS = [
    Flag("output", str, "Output path; '-' for stdout; '{i}' in the name writes one file per sample. An existing "
         "file is replaced (mode kept; read-only files refused), a pipe or device written into.",
         short="-o", show_default=False),
    Flag("n", int, "Number of samples.", short="-n", default=1),
    COMMON["seed"], COMMON["weights"], COMMON["revision"], COMMON["device"], COMMON["threads"], COMMON["quiet"],
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
                       "--decay-steps, not --steps, so a run can be extended without rewriting its past."),
    Flag("batch_size", int, "Global batch size (split across --nproc processes)."),
    Flag("lr", float, "Peak learning rate."),
    Flag("warmup_steps", int, "Linear lr warm-up steps."),
    Flag("decay_steps", int, "Step at which the cosine decay reaches lr/10 (0: constant lr); default: the "
                             "recipe's steps (plugin or --preset), not a typed --steps."),
    COMMON["seed"], COMMON["device"], COMMON["threads"],
    Flag("preset", str, "Named preset of architecture and training values (see `gencli info`).",
         show_default=False),
    Flag("config", Path, "TOML file of option values (any flag name); typed flags override it.",
         show_default=False),
    Flag("resume", bool, "Continue the run in --out from its last checkpoint.", default=False, negatable=False),
    Flag("save_every", int, "Checkpoint every N steps (and always at the end)."),
    Flag("log_every", int, "Write metrics and progress lines every N steps."),
    Flag("grad_clip", float, "Clip the global gradient norm to this value (0: off)."),
    Flag("precision", typing.Literal["auto", "fp32", "bf16"], "auto: bf16 autocast on CUDA, fp32 on the CPU."),
    Flag("compile", bool, "Compile the model with torch.compile."),
    Flag("on_nonfinite", typing.Literal["stop", "rollback"],
         "On a NaN/Inf loss: stop keeping the last good checkpoint, or roll back to it with half the lr."),
    Flag("nproc", int, "Processes to train with (torch.distributed; gloo on the CPU, nccl on CUDA).", default=1),
    Flag("nnodes", str, "torchrun --nnodes, for multi-node training.", show_default=False),
    Flag("node_rank", int, "torchrun --node-rank.", show_default=False),
    Flag("rdzv_endpoint", str, "torchrun --rdzv-endpoint host:port.", show_default=False),
    COMMON["quiet"],
]
CORE_FLAGS: dict[str, frozenset[str]] = {
    "sample": frozenset(f.dest for f in SAMPLE_FLAGS),
    "evaluate": frozenset(f.dest for f in EVALUATE_FLAGS),
    "train": frozenset(f.dest for f in TRAIN_FLAGS),
}


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
        flags.append(Flag(f.name, flag_type, str(f.metadata.get("help", "")), group=group, short=short,
                          default=default))
    return flags


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
    # "[default: False]" on --quiet says nothing; 0 is a real default (note 0 == False in Python)
    if flag.show_default and not (flag.default is None or flag.default is False or flag.default == ""):
        # Shown here rather than through Typer's show_default, whose string form prints as "(value)".
        text = f"{text} [default: {flag.default}]" if text else f"[default: {flag.default}]"
    return escape(text)


def _annotation(flag: Flag) -> Any:
    if len(flag.dest) == 1 and flag.short:
        names = [flag.short]  # "-n", not "--n"
    else:
        long = flag.long
        if flag.type is bool and flag.negatable:
            long = f"{long}/--no-{long[2:]}"
        names = [long] + ([flag.short] if flag.short else [])
    info = typer.Option(
        *names,
        help=_help_text(flag),
        show_default=False,
        hidden=flag.hidden,
        rich_help_panel="Core options" if flag.group == "core" else _PANELS.get(flag.group),
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
