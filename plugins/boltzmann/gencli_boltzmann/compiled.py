"""numba's compiled code for this package, cached under ~/.cache/gencli/numba (like the WaveNet sampler's), not in
a __pycache__ beside the source, which may be read-only (a system-wide install) and is not gencli's to fill.

numba keys each cached entry on its own version, the Python version, the source file's timestamp and size, and
the CPU; the folder adds llvmlite's and numpy's versions so that an upgrade never meets another toolchain's files.
Where the folder cannot be written, the kernels compile in every process instead (about a second).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba

from gencli.numba_cache import compile_cached, writable_cache_folder

_folder: dict[str, Path | None] = {}


def cache_folder() -> Path | None:
    """This package's numba cache, made and checked writable once per process; None where it cannot be."""
    if "path" not in _folder:
        import llvmlite
        import numpy as np

        toolchain = f"numba{numba.__version__}-llvmlite{llvmlite.__version__}-numpy{np.__version__}"
        try:
            _folder["path"] = writable_cache_folder(f"boltzmann-{toolchain}")
        except OSError:
            _folder["path"] = None
    return _folder["path"]


def njit(function: Callable[..., Any]) -> Any:
    """``numba.njit(nogil=True)`` with its disk cache in ``cache_folder()`` (no cache where that is None)."""
    return compile_cached(function, cache_folder(), nogil=True)
