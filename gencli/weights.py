"""Weights: resolve a source to a folder, validate it, load it into a model, and save run folders atomically.

A source is a run folder, a ``model.safetensors`` file (its config.json beside it), a Hub repo id
``org/name[@revision]``, or None for the plugin's bundled checkpoint. Only safetensors are read: the header
is checked against the model that config.json describes (names, shapes, dtypes) before any tensor is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import GencliError, UsageError
from gencli.files import atomic_write, file_digest
from gencli.registry import RESERVED_CONFIG_KEYS
from gencli.tensorfile import WEIGHTS_FILE, check_against_model, read_header

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


@dataclass
class WeightsSource:
    folder: Path
    weights_file: Path
    id: str  # "bundled:charrnn", "hub:org/name@<commit>" or "local:<path>"


@dataclass
class LoadedModel:
    model: Any
    config: Any
    source: WeightsSource
    sha256: str


def resolve(plugin: Any, source: str | None, revision: str | None = None, *, quiet: bool = False) -> WeightsSource:
    if source is None:
        if revision is not None:
            raise UsageError("--revision needs --weights with a Hub repo id")
        folder = getattr(plugin, "bundled_weights", None)
        if folder is None or not (Path(folder) / WEIGHTS_FILE).is_file():
            raise GencliError(f"{plugin.name} has no bundled weights; train with `gencli train {plugin.name}` "
                              f"and pass --weights RUN_DIR")
        return WeightsSource(Path(folder), Path(folder) / WEIGHTS_FILE, f"bundled:{plugin.name}")
    if not source.strip():
        raise UsageError("--weights is empty")
    path = Path(source).expanduser()
    if path.exists():
        if revision is not None:
            raise UsageError("--revision applies to Hub repo ids, not to a local path")
        if path.is_dir():
            return WeightsSource(path, path / WEIGHTS_FILE, f"local:{path.resolve()}")
        read_header(path)  # a file named by the user is checked first, so an error names it and not its folder
        return WeightsSource(path.parent, path, f"local:{path.resolve()}")
    from gencli import hub

    if looks_local(source) or not hub.looks_like_repo_id(source):
        raise GencliError(f"--weights {source}: no such file or folder, and not a Hub repo id (org/name)")
    repo, at_revision = hub.split_repo_id(source)
    if at_revision and revision and at_revision != revision:
        raise UsageError(f"two revisions given: {source!r} and --revision {revision}")
    try:
        folder, commit = hub.download_repo(repo, revision or at_revision, quiet=quiet)
    except UsageError:
        raise
    except GencliError as error:
        # "runs/typo" reads as a repo id too: when the Hub has no such repo, or the name's first part is a
        # local folder, say that both readings failed.
        if isinstance(error, hub.RepoNotFound) or Path(repo).parent.is_dir():
            raise GencliError(f"--weights {source}: no such local folder, and {error}") from None
        raise
    return WeightsSource(folder, folder / WEIGHTS_FILE, f"hub:{repo}@{commit}")


def looks_local(source: str) -> bool:
    """A source only a path can mean (the Hub is never asked about it)."""
    return (source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source
            or source.endswith((".safetensors", ".json")))


def read_config(plugin: Any, folder: Path) -> Any:
    """config.json -> the plugin's Config, refusing another plugin's config, unknown keys and wrong types."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        what = "a gencli weights folder holds config.json and model.safetensors"
        raise GencliError(f"{folder}: no {CONFIG_FILE} ({what})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GencliError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise GencliError(f"{path}: expected a JSON object")
    if "gencli_plugin" not in raw:
        raise GencliError(f"{path}: not a gencli config (no gencli_plugin key); weights made by another tool?")
    owner = raw["gencli_plugin"]
    if owner != plugin.name:
        raise GencliError(f"{path}: weights for plugin {owner!r}, not {plugin.name!r}")
    version = raw.get("gencli_format", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GencliError(f"{path}: gencli_format {version!r} is newer than this gencli reads ({FORMAT_VERSION}); "
                          "upgrade gencli")
    fields = {f.name for f in dataclasses.fields(plugin.Config)}
    unknown = sorted(set(raw) - fields - RESERVED_CONFIG_KEYS)
    if unknown:
        raise GencliError(f"{path}: unknown config key(s) {', '.join(unknown)} for {plugin.name}")
    values = {k: v for k, v in raw.items() if k in fields}
    hints = typing.get_type_hints(plugin.Config)
    for key, value in values.items():
        expected = hints.get(key)
        if not value_fits(value, expected):
            raise GencliError(f"{path}: {key} must be {type_name(expected)}, not {value!r}")
        if expected is float and isinstance(value, int):
            values[key] = float(value)  # JSON writes 1.0 as 1 in some tools
    from gencli.options import dataclass_flags, problem_with

    for flag in dataclass_flags(plugin.Config, "Config"):  # the bounds a flag would enforce, on the file too
        problem = problem_with(flag, values.get(flag.dest))
        if problem is not None:
            raise GencliError(f"{path}: {flag.dest} {problem}")
    try:
        return plugin.Config(**values)
    except (TypeError, ValueError) as error:
        raise GencliError(f"{path}: invalid config ({error})") from None


def value_fits(value: Any, expected: Any) -> bool:
    """Whether a JSON value can stand for a field of type ``expected`` (unknown or complex types pass)."""
    if expected is None or expected is Any:
        return True
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, a) for a in args)
    if expected is type(None):
        return value is None
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected in (str, Path):
        return isinstance(value, str)
    if origin in (list, tuple) or expected in (list, tuple):
        return isinstance(value, list)
    if origin is dict or expected is dict:
        return isinstance(value, dict)
    return True


def type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def config_to_json(plugin: Any, config: Any) -> str:
    values = {"gencli_plugin": plugin.name, "gencli_format": FORMAT_VERSION, **dataclasses.asdict(config)}
    return json.dumps(values, indent=2, sort_keys=True, default=str) + "\n"


def sha256_of(path: Path) -> str:
    return file_digest(path, hashlib.sha256())


def build_model(plugin: Any, config: Any, config_path: Path) -> Any:
    """``plugin.build(config)``; a config the plugin cannot build is the weights' fault, not a crash."""
    try:
        return plugin.build(config)
    except GencliError:
        raise
    except Exception as error:
        from gencli.registry import one_line

        raise GencliError(f"{config_path}: {plugin.name} cannot build a model from this config "
                          f"({one_line(error)})") from None


@dataclass
class Located:
    """Weights found and checked as far as possible without torch: source, config, safetensors header."""

    source: WeightsSource
    config: Any
    header: dict[str, Any]


def locate(plugin: Any, source: str | None, revision: str | None = None, *, quiet: bool = False) -> Located:
    """Resolve ``source`` (downloading it if needed) and check config.json and the file's header.

    Torch-free, so every error here reaches the user without torch's import time.
    """
    where = resolve(plugin, source, revision, quiet=quiet)
    config = read_config(plugin, where.folder)
    header = read_header(where.weights_file)
    return Located(where, config, header)


def load_located(plugin: Any, located: Located, device: Any) -> LoadedModel:
    """Build the model, check tensor names, shapes, dtypes and values, and load the weights (eval mode)."""
    import torch

    where, config = located.source, located.config
    # Built on the CPU with its ordinary init rather than on the meta device: the model is needed anyway,
    # and meta tensors pull in torch._dynamo (about a second per command).
    model = build_model(plugin, config, where.folder / CONFIG_FILE)
    expected = {name: (list(t.shape), str(t.dtype).removeprefix("torch."))
                for name, t in model.state_dict().items()}
    check_against_model(where.weights_file, located.header, expected)
    try:
        tensors = load_tensors(where.weights_file)
    except Exception as error:  # safetensors' own checks (overlapping offsets, ...)
        raise GencliError(f"{where.weights_file}: unreadable safetensors ({error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GencliError(f"{where.weights_file}: tensor {name} contains NaN or Inf")
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    return LoadedModel(model, config, where, sha256_of(where.weights_file))


def load_located_arrays(located: Located, tensors: Any) -> LoadedModel:
    """The torch-free twin of ``load_located``, for a plugin's ``NumpySampler``: the same checks (tensor names,
    shapes and dtypes against ``tensors``, name -> (shape, dtype), and finite values), and the weights as numpy
    arrays by name in ``LoadedModel.model``."""
    import numpy as np

    where = located.source
    check_against_model(where.weights_file, located.header,
                        {name: (list(shape), dtype) for name, (shape, dtype) in tensors.items()})
    try:
        arrays = load_tensors(where.weights_file, numpy=True)
    except Exception as error:  # safetensors' own checks (overlapping offsets, ...)
        raise GencliError(f"{where.weights_file}: unreadable safetensors ({error})") from None
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise GencliError(f"{where.weights_file}: tensor {name} contains NaN or Inf")
        array.flags.writeable = False  # shared by the sampler's layout code; nothing may change the weights
    return LoadedModel(arrays, located.config, where, sha256_of(where.weights_file))


def load(plugin: Any, source: str | None, revision: str | None, device: Any, *, quiet: bool = False) -> LoadedModel:
    """Resolve, validate and load weights into a freshly built model on ``device`` (eval mode).

    Every check (config keys and types, tensor names, shapes, dtypes, file length, finite values) runs
    before the weights reach the model, and each failure is one GencliError line.
    """
    return load_located(plugin, locate(plugin, source, revision, quiet=quiet), device)


# ---- writing ------------------------------------------------------------------------------------


def load_tensors(path: Path, *, numpy: bool = False) -> dict[str, Any]:
    """A safetensors file as torch tensors (or numpy arrays, without importing torch). safetensors opens only
    UTF-8 paths: a path holding other bytes (legal on Linux) is read into memory and parsed from there instead."""
    if numpy:
        from safetensors.numpy import load, load_file
    else:
        from safetensors.torch import load, load_file

    try:
        name = os.fsdecode(path)
        name.encode("utf-8")
    except UnicodeEncodeError:
        return load(Path(path).read_bytes())
    return load_file(name)


def state_dict_bytes(state: dict[str, Any], metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    # safetensors refuses shared or non-contiguous storage; a detached contiguous copy is always safe.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    return save(tensors, metadata=metadata)


def save_model(folder: Path, plugin: Any, model: Any, config: Any) -> None:
    """Write config.json and model.safetensors, each atomically, as a loadable (and pushable) folder."""
    atomic_write(folder / CONFIG_FILE, config_to_json(plugin, config).encode())
    atomic_write(folder / WEIGHTS_FILE, state_dict_bytes(model.state_dict(), {"format": "pt"}))
