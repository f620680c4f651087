"""What a training run is: the resolved settings, saved as ``run.json`` so the run can be repeated or resumed.

Values are layered, each layer overriding the one before:
engine defaults < the plugin's ``train_defaults`` < ``--preset`` < ``--config run.toml`` < typed flags.

``steps`` is only where a run stops. The learning-rate schedule is a function of the step alone, with its
horizon ``decay_steps`` fixed when the run starts (by default the *recipe's* length: the plugin's or the
preset's ``steps``, never a typed ``--steps``). That is what lets ``--resume --steps N`` extend a run into
exactly the run that had been started with ``--steps N`` (see ``gencli.schedule.lr_at``).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import tomllib
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.options import Flag, check_value
from gencli.plugin import defaults_of

RUN_FILE = "run.json"


@dataclass
class EngineOptions:
    """The shared training loop's settings; defaults suit a tiny model on a laptop CPU."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    save_every: int = 200  # checkpoints are cheap next to a lost hour of training
    log_every: int = 10
    grad_clip: float = 1.0  # global-norm clipping; recurrent models need it (Graves 2013)
    precision: str = "auto"
    compile: bool = False
    on_nonfinite: str = "stop"
    warmup_steps: int = 0  # linear warm-up, then a cosine decay to lr / 10 ending at decay_steps
    # The schedule's horizon, independent of --steps so that extending a run changes nothing already done.
    # None: the recipe's steps (plugin defaults < preset < decay_steps in --config), settled by resolve().
    # 0: no decay, a constant lr after the warm-up.
    decay_steps: int | None = None
    threads: int | None = None  # torch CPU threads (--threads); None: chosen per machine (gencli.device.set_threads)


@dataclass
class RunSpec:
    plugin: str
    data: str | None
    preset: str | None
    engine: EngineOptions
    config: dict[str, Any]  # architecture (Config) values, before prepare() adds data-derived fields
    options: dict[str, Any]  # the plugin's TrainOptions values
    command: str = ""  # the exact command line that started the run
    launcher: dict[str, Any] = field(default_factory=dict)  # nproc / nnodes / node_rank / rdzv_endpoint
    resumed: list[str] = field(default_factory=list)  # the exact command of each --resume, in order
    # What the machine of the latest session made of settings that depend on it: precision (and why).
    resolved: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        raw = json.loads(text)
        engine = raw["engine"]
        if "decay_steps" not in engine:  # a run.json written before decay_steps: its horizon was its steps
            engine["decay_steps"] = engine.get("steps")
        raw["engine"] = EngineOptions(**engine)
        return cls(**raw)


ENGINE_FIELDS = {f.name for f in dataclasses.fields(EngineOptions)}
LAUNCH_FIELDS = ("nproc", "nnodes", "node_rank", "rdzv_endpoint")


def shell_quote(arg: str) -> str:
    """One argument as a POSIX shell reads it back. Bytes that are not UTF-8, which Python keeps in ``sys.argv``
    as surrogate escapes, are written as bash's ``$'\\xNN'``: the recorded command stays UTF-8 text and reruns."""
    raw = arg.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        plain = set(range(0x20, 0x7F)) - {ord("'"), ord("\\")}
        return "$'" + "".join(chr(b) if b in plain else f"\\x{b:02x}" for b in raw) + "'"
    return shlex.quote(arg)


def shell_join(argv: list[str]) -> str:
    return " ".join(shell_quote(arg) for arg in argv)


def printable(text: str) -> str:
    """``text`` with any undecodable bytes (surrogate escapes) shown as ``\\xNN``: safe to write as UTF-8."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def read_toml(path: Path, flags: list[Flag]) -> dict[str, dict[str, Any]]:
    """{group: {dest: value}} from a flat TOML file whose keys are flag names (dashes or underscores)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config: no such file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--config {path}: not valid TOML ({error})") from None
    by_dest = {flag.dest: flag for flag in flags}
    # Engine settings without a flag of their own (warmup_steps, decay_steps) can still be set in the file.
    hints = typing.get_type_hints(EngineOptions)
    for name in ENGINE_FIELDS - set(by_dest):
        expected = int if name == "decay_steps" else hints[name]
        by_dest[name] = Flag(name, expected, "", group="core")
    groups: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        dest = key.replace("-", "_")
        if dest in ("config", "resume"):
            raise UsageError(f"--config {path}: '{key}' can only be given on the command line")
        if dest not in by_dest:
            raise UsageError(f"--config {path}: unknown option '{key}'")
        flag = by_dest[dest]
        value = check_value(flag, check_type(value, flag, origin=str(path)), str(path))  # typed flags' bounds too
        groups.setdefault(flag.group, {})[dest] = value
    return groups


def check_type(value: Any, flag: Flag, origin: str) -> Any:
    """Values from TOML are typed by TOML; make sure they fit the flag (an int may stand for a float)."""
    expected = flag.type
    if typing.get_origin(expected) is typing.Literal:
        if value not in typing.get_args(expected):
            choices = ", ".join(map(str, typing.get_args(expected)))
            raise UsageError(f"{origin}: '{flag.dest}' must be one of {choices}, not {value!r}")
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is Path and isinstance(value, str):
        return Path(value)
    if isinstance(expected, type) and not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise UsageError(f"{origin}: '{flag.dest}' must be {getattr(expected, '__name__', expected)}, not {value!r}")
    return value


def requested_settings(typed: dict[str, dict[str, Any]], flags: list[Flag]) -> dict[str, dict[str, Any]]:
    """{group: {dest: value}} of what the command asks for: the --config file's values under the typed flags."""
    layers = [typed]
    if typed.get("core", {}).get("config") is not None:
        layers.insert(0, read_toml(Path(typed["core"]["config"]), flags))
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for group, values in layer.items():
            merged.setdefault(group, {}).update(values)
    return merged


def resolve(plugin: Any, typed: dict[str, dict[str, Any]], flags: list[Flag], command: str) -> RunSpec:
    """Layer the defaults, the preset, the TOML file and the typed flags into one RunSpec."""
    merged = requested_settings(typed, flags)
    core = merged.get("core", {})

    preset_name = core.get("preset")
    preset = None
    if preset_name is not None:
        if preset_name not in plugin.presets:
            known = ", ".join(plugin.presets) or "none"
            raise UsageError(f"unknown preset {preset_name!r} for {plugin.name}; presets: {known}")
        preset = plugin.presets[preset_name]

    engine_values = {**dict(plugin.train_defaults), **(dict(preset.train) if preset else {})}
    # The recipe's length, before any typed or --config --steps: the schedule's horizon unless set itself.
    recipe_steps = engine_values.get("steps", EngineOptions.steps)
    engine_values.update({k: v for k, v in core.items() if k in ENGINE_FIELDS})
    unknown = set(engine_values) - ENGINE_FIELDS
    if unknown:
        raise UsageError(f"{plugin.name}: unknown training setting(s) {sorted(unknown)}")
    if engine_values.get("decay_steps") is None:
        engine_values["decay_steps"] = recipe_steps
    engine = EngineOptions(**engine_values)
    check_engine(engine)

    config = defaults_of(plugin.Config)
    config.update(dict(preset.config) if preset else {})
    config.update(merged.get("Config", {}))
    options = defaults_of(plugin.TrainOptions)
    options.update(merged.get("TrainOptions", {}))
    launcher = {k: core[k] for k in LAUNCH_FIELDS if core.get(k) is not None}
    data = core.get("data")
    return RunSpec(plugin.name, data, preset_name, engine, config, options, command, launcher)


def check_engine(engine: EngineOptions) -> None:
    if engine.steps < 1 or engine.batch_size < 1 or engine.save_every < 1 or engine.log_every < 1:
        raise UsageError("--steps, --batch-size, --save-every and --log-every must be at least 1")
    if not (engine.lr > 0 and engine.lr < float("inf")):
        raise UsageError("--lr must be a positive number")
    if engine.warmup_steps < 0 or (engine.decay_steps or 0) < 0:
        raise UsageError("warmup_steps and decay_steps must be at least 0")
    if engine.on_nonfinite not in ("stop", "rollback"):
        raise UsageError(f"on_nonfinite must be stop or rollback, not {engine.on_nonfinite!r}")


def load_run(run_dir: Path) -> RunSpec:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise UsageError(f"--resume: {run_dir} holds no run ({RUN_FILE} missing); start it without --resume")
    try:
        return RunSpec.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as error:
        raise UsageError(f"--resume: {path} is unreadable ({error})") from None
