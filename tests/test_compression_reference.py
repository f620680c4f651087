"""gencli.metrics.compression: the compressors' bits per character, the reference beside a text model's figure."""

from __future__ import annotations

import random

import pytest

from gencli.metrics.compression import COMPRESSORS, compressed_bits_per_char


def test_text_seen_in_the_context_costs_next_to_nothing() -> None:
    rng = random.Random(0)
    passage = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(20_000))
    figures = compressed_bits_per_char(passage, passage[:5_000])  # held out: a repeat of the training text
    assert figures["gzip_bits_per_char"] < 0.2 and figures["xz_bits_per_char"] < 0.2, figures  # LZ copies
    for name in COMPRESSORS:
        assert figures[f"{name}_bits_per_char"] < 0.7 * figures[f"{name}_alone_bits_per_char"], figures
        # alone, the same letters cost about log2(27) = 4.75 bits each (no compressor beats the entropy)
        assert 4.7 < figures[f"{name}_alone_bits_per_char"] < 6.5, figures


def test_new_random_text_costs_its_entropy_even_after_a_context() -> None:
    rng = random.Random(1)
    letters = lambda n: "".join(rng.choice("01") for _ in range(n))  # noqa: E731
    figures = compressed_bits_per_char(letters(20_000), letters(20_000))
    for name in COMPRESSORS:
        assert 0.98 < figures[f"{name}_bits_per_char"] < 1.6, figures


def test_nothing_to_compress_is_refused() -> None:
    with pytest.raises(ValueError):
        compressed_bits_per_char("context", "")
