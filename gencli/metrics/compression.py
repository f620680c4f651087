"""General-purpose compressors as a reference figure for text models: bits per character that gzip, bzip2
and xz need for held-out text, measured in the same run as the model's figure.

Two figures per compressor. ``<name>_bits_per_char`` gives it the training text first, as the model had it:
the extra compressed size that the held-out text costs after it, ``size(train + held) - size(train)``, per
held-out character. ``<name>_alone_bits_per_char`` compresses the held-out text by itself, charging the
compressor for learning the language from nothing. Standard library only (no torch).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: zlib.compress(data, 9),  # DEFLATE, as gzip -9 (a 32 KB window: little context)
    "bzip2": lambda data: bz2.compress(data, 9),  # 900 KB blocks
    "xz": lambda data: lzma.compress(data, preset=9),  # LZMA2, a 64 MB dictionary
}


def compressed_bits_per_char(context: str, held_out: str) -> dict[str, float]:
    """For each compressor, the bits per character of ``held_out`` after ``context`` and alone (UTF-8 bytes are
    compressed, characters counted)."""
    if not held_out:
        raise ValueError("no held-out text to compress")
    before, after, alone = (text.encode("utf-8") for text in (context, context + held_out, held_out))
    figures = {}
    for name, compress in COMPRESSORS.items():
        figures[f"{name}_bits_per_char"] = 8 * (len(compress(after)) - len(compress(before))) / len(held_out)
        figures[f"{name}_alone_bits_per_char"] = 8 * len(compress(alone)) / len(held_out)
    return figures
