"""A safetensors file, checked without torch: is it complete and really safetensors (never a pickle), and do its
tensors' names, shapes and dtypes match what a model expects.

Both the weights loader and `gencli push` (which refuses what could not be loaded back) use it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from gencli.errors import GencliError

WEIGHTS_FILE = "model.safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit


def read_header(path: Path) -> dict[str, Any]:
    """The safetensors JSON header, after checking that the file really is a complete safetensors file.

    Only the first 8 bytes and the header are read: a pickle is recognised by its first bytes and refused
    before anything could unpickle it.
    """
    if not path.is_file():
        raise GencliError(f"{path}: no such weights file" + (" (is it a gencli run folder?)"
                                                              if path.name == WEIGHTS_FILE else ""))
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
        # A safetensors file: an 8-byte little-endian header length, then the JSON header, which opens with
        # "{". Checked first, because the length's low bytes alone can be 0x80 or "PK" (a 640- or 19,280-byte
        # header), which are also how pickles begin.
        (header_len,) = struct.unpack("<Q", head[:8]) if len(head) >= 8 else (0,)
        safetensors_like = head[8:9] == b"{" and header_len <= size - 8
        # torch.save writes a zip archive ("PK"), or with the legacy format a raw pickle (protocol byte 0x80).
        if not safetensors_like and (head[:2] == b"PK" or head[:1] == b"\x80"):
            raise GencliError(f"{path}: a pickle/PyTorch checkpoint, not safetensors; gencli loads safetensors "
                              "only (pickles can run code)")
        if len(head) < 8:
            raise GencliError(f"{path}: truncated or not a safetensors file ({size} bytes)")
        f.seek(8)
        if header_len > MAX_HEADER_BYTES:
            raise GencliError(f"{path}: not a safetensors file (bad header length)")
        if header_len > size - 8:
            raise GencliError(f"{path}: truncated ({size} bytes; the file ends inside its header)")
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise GencliError(f"{path}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise GencliError(f"{path}: not a safetensors file (unreadable header)")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list) and all(isinstance(d, int) for d in entry["shape"])
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(isinstance(o, int) and o >= 0 for o in entry["data_offsets"])):
            raise GencliError(f"{path}: not a safetensors file (bad header entry for {name!r})")
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
