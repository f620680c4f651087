"""numba's compiled code for this package, cached under ~/.cache/gencli/numba (like the WaveNet sampler's), not in
a __pycache__ beside the source, which may be read-only (a system-wide install) and is not gencli's to fill.

numba keys each cached entry on its own version, the Python version, the source file's timestamp and size, and
the CPU; the folder adds llvmlite's and numpy's versions so that an upgrade never meets another toolchain's files.
Where the folder cannot be written, the kernels compile in every process instead (about a second).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba

from gencli.numba_cache import cache_root, compile_cached

_folder: dict[str, Path | None] = {}


def cache_folder() -> Path | None:
    """This package's numba cache, made and checked writable once per process; None where it cannot be."""
    if "path" not in _folder:
        import llvmlite
        import numpy as np

        toolchain = f"numba{numba.__version__}-llvmlite{llvmlite.__version__}-numpy{np.__version__}"
        folder = cache_root() / f"boltzmann-{toolchain}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()  # numba writes its index and code the same way
            _folder["path"] = folder
        except OSError:
            _folder["path"] = None
    return _folder["path"]


def njit(function: Callable[..., Any]) -> Any:
    """``numba.njit(nogil=True)`` with its disk cache in ``cache_folder()`` (no cache where that is None)."""
    return compile_cached(function, cache_folder(), nogil=True)
