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
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import GencliError
from gencli.registry import RESERVED_CONFIG_KEYS

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit


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


def resolve(plugin: Any, source: str | None, revision: str | None = None) -> WeightsSource:
    if source is None:
        if revision is not None:
            raise GencliError("--revision needs --weights with a Hub repo id")
        folder = getattr(plugin, "bundled_weights", None)
        if folder is None or not (Path(folder) / WEIGHTS_FILE).is_file():
            raise GencliError(f"{plugin.name} has no bundled weights; train with `gencli train {plugin.name}` "
                              f"and pass --weights RUN_DIR")
        return WeightsSource(Path(folder), Path(folder) / WEIGHTS_FILE, f"bundled:{plugin.name}")
    path = Path(source).expanduser()
    if path.exists():
        if revision is not None:
            raise GencliError("--revision applies to Hub repo ids, not to a local path")
        if path.is_dir():
            return WeightsSource(path, path / WEIGHTS_FILE, f"local:{path.resolve()}")
        return WeightsSource(path.parent, path, f"local:{path.resolve()}")
    from gencli import hub

    if hub.looks_like_repo_id(source):
        repo, at_revision = hub.split_repo_id(source)
        if at_revision and revision and at_revision != revision:
            raise GencliError(f"two revisions given: {source!r} and --revision {revision}")
        folder, commit = hub.download_repo(repo, revision or at_revision)
        return WeightsSource(folder, folder / WEIGHTS_FILE, f"hub:{repo}@{commit}")
    raise GencliError(f"--weights {source}: no such file or folder, and not a Hub repo id (org/name)")


def read_config(plugin: Any, folder: Path) -> Any:
    """config.json -> the plugin's Config, refusing another plugin's config and unknown keys."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise GencliError(f"{folder}: no {CONFIG_FILE} (a gencli weights folder holds config.json and "
                          f"{WEIGHTS_FILE})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GencliError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise GencliError(f"{path}: expected a JSON object")
    owner = raw.get("gencli_plugin")
    if owner != plugin.name:
        raise GencliError(f"{path}: weights for plugin {owner!r}, not {plugin.name!r}")
    fields = {f.name for f in dataclasses.fields(plugin.Config)}
    unknown = sorted(set(raw) - fields - RESERVED_CONFIG_KEYS)
    if unknown:
        raise GencliError(f"{path}: unknown config key(s) {', '.join(unknown)} for {plugin.name}")
    values = {k: v for k, v in raw.items() if k in fields}
    try:
        return plugin.Config(**values)
    except (TypeError, ValueError) as error:
        raise GencliError(f"{path}: invalid config ({error})") from None


def config_to_json(plugin: Any, config: Any) -> str:
    values = {"gencli_plugin": plugin.name, "gencli_format": FORMAT_VERSION, **dataclasses.asdict(config)}
    return json.dumps(values, indent=2, sort_keys=True, default=str) + "\n"


def read_header(path: Path) -> dict[str, Any]:
    """The safetensors JSON header, after checking that the file really is a complete safetensors file."""
    if not path.is_file():
        raise GencliError(f"{path}: no such weights file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if head[:2] == b"PK" or head[:1] == b"\x80":
            raise GencliError(f"{path}: a pickle/PyTorch checkpoint, not safetensors; gencli loads safetensors "
                              "only (pickles can run code)")
        if len(head) < 8:
            raise GencliError(f"{path}: truncated or not a safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise GencliError(f"{path}: not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise GencliError(f"{path}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise GencliError(f"{path}: not a safetensors file (unreadable header)")
    header.pop("__metadata__", None)
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if 8 + header_len + end > size:
        raise GencliError(f"{path}: truncated ({size} bytes, header promises {8 + header_len + end})")
    return header


SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
                      "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def check_against_model(path: Path, header: dict[str, Any], expected: dict[str, tuple[list[int], str]]) -> None:
    """Refuse a file whose tensor names, shapes or dtypes differ from what config.json implies."""
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + (
            [f"unexpected {', '.join(extra[:3])}"] if extra else [])
        raise GencliError(f"{path}: tensors do not match config.json ({'; '.join(parts)})")
    for name, (shape, dtype) in expected.items():
        got_shape, got_dtype = header[name]["shape"], SAFETENSORS_DTYPES.get(header[name]["dtype"], "?")
        if list(got_shape) != list(shape):
            raise GencliError(f"{path}: tensor {name} has shape {got_shape}, config.json implies {list(shape)}")
        if got_dtype != dtype:
            raise GencliError(f"{path}: tensor {name} is {got_dtype}, the model expects {dtype}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(plugin: Any, source: str | None, revision: str | None, device: Any) -> LoadedModel:
    """Resolve, validate and load weights into a freshly built model on ``device`` (eval mode)."""
    import torch
    from safetensors.torch import load_file

    where = resolve(plugin, source, revision)
    config = read_config(plugin, where.folder)
    header = read_header(where.weights_file)
    with torch.device("meta"):  # shapes only: no memory, no init cost
        skeleton = plugin.build(config)
    expected = {name: (list(t.shape), str(t.dtype).removeprefix("torch."))
                for name, t in skeleton.state_dict().items()}
    check_against_model(where.weights_file, header, expected)
    try:
        tensors = load_file(str(where.weights_file))
    except Exception as error:  # safetensors' own checks (overlapping offsets, ...)
        raise GencliError(f"{where.weights_file}: unreadable safetensors ({error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GencliError(f"{where.weights_file}: tensor {name} contains NaN or Inf")
    model = plugin.build(config)
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    return LoadedModel(model, config, where, sha256_of(where.weights_file))


# ---- writing ------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def state_dict_bytes(state: dict[str, Any], metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    # safetensors refuses shared or non-contiguous storage; a detached contiguous copy is always safe.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    return save(tensors, metadata=metadata)


def save_model(folder: Path, plugin: Any, model: Any, config: Any) -> None:
    """Write config.json and model.safetensors, each atomically, as a loadable (and pushable) folder."""
    atomic_write(folder / CONFIG_FILE, config_to_json(plugin, config).encode())
    atomic_write(folder / WEIGHTS_FILE, state_dict_bytes(model.state_dict(), {"format": "pt"}))
