"""Warnings and notes for the user, on stderr, silenced by -q. Plugins call these instead of print()."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_quiet = False


@contextmanager
def quiet_if(quiet: bool) -> Iterator[None]:
    """Silence warnings and notes for the duration of one command (-q), restoring the previous state after."""
    global _quiet
    previous, _quiet = _quiet, quiet or _quiet
    try:
        yield
    finally:
        _quiet = previous


def warn(text: str) -> None:
    """Something the user should know about but that does not stop the command (e.g. skipped files)."""
    if not _quiet:
        print(f"gencli: warning: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    """Neutral information (e.g. 'resampled 3 files from 44.1 kHz')."""
    if not _quiet:
        print(f"gencli: {text}", file=sys.stderr, flush=True)
