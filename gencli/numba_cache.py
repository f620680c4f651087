"""Where gencli keeps numba's compiled code: ~/.cache/gencli/numba/<folder per plugin and toolchain>, never a
__pycache__ beside the source (which may be read-only, and is not gencli's to fill). Plugins pick the folder
name (what their compiled code depends on); this module owns the root and the numba mechanics."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gencli" / "numba"


def writable_cache_folder(name: str) -> Path:
    """``cache_root() / name``, made and checked writable; raises OSError where it cannot be (the caller then
    compiles without a disk cache)."""
    folder = cache_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryFile(dir=folder).close()  # numba writes its index and code the same way
    return folder


def compile_cached(function: Callable[..., Any], folder: Path | None, **flags: Any) -> Any:
    """``numba.njit(**flags)(function)`` with its disk cache in ``folder`` (no disk cache where that is None)."""
    import numba

    if folder is None:
        return numba.njit(**flags)(function)
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(folder)  # read once, when the dispatcher sets up its cache (at decoration)
    try:
        return numba.njit(cache=True, **flags)(function)
    finally:
        numba.config.CACHE_DIR = previous
