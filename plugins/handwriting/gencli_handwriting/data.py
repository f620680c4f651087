"""Training and held-out lines: the synthetic Hershey corpus (default) or an IAM On-Line folder (--data DIR),
normalised offsets, and padded batches for the training engine."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gencli.data.text import Vocabulary
from gencli.errors import UsageError
from gencli.files import atomic_write
from gencli_handwriting.strokes import Line, load_iam

EMBEDDED = "hershey"
SYNTHETIC_LINES = 4000
SYNTHETIC_SEED = 7
HELD_OUT_LINES = 200  # the last lines of the corpus: never trained on
CACHE_VERSION = 1


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gencli" / "handwriting"


def synthetic_lines() -> list[Line]:
    """The default corpus, generated once (a few seconds) and cached as JSON + npz (no pickle)."""
    from gencli_handwriting import synthetic

    stem = cache_dir() / f"hershey-v{CACHE_VERSION}-{SYNTHETIC_LINES}-{SYNTHETIC_SEED}"
    try:
        texts = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as arrays:
            offsets, lengths = arrays["offsets"], arrays["lengths"]
        if len(texts) == len(lengths) == SYNTHETIC_LINES:
            return [Line(part, text) for part, text in zip(np.split(offsets, np.cumsum(lengths)[:-1]), texts)]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # no cache yet, or a broken one: make the corpus again
    lines = synthetic.corpus(SYNTHETIC_LINES, SYNTHETIC_SEED)
    arrays = io.BytesIO()
    np.savez(arrays, offsets=np.concatenate([line.offsets for line in lines]),
             lengths=np.asarray([len(line.offsets) for line in lines]))
    try:  # atomic writes: a process reading the cache while another writes it never sees half a file
        stem.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(stem.with_suffix(".npz"), arrays.getvalue())
        atomic_write(stem.with_suffix(".json"), json.dumps([line.text for line in lines]).encode("utf-8"))
    except OSError:
        pass  # a read-only home still trains, just without the cache
    return lines


def load_lines(source: str | None) -> tuple[list[Line], str]:
    """(lines, one-line description) for --data."""
    if source is None or source == EMBEDDED:
        lines = synthetic_lines()
        return lines, (f"{EMBEDDED}: {len(lines):,} SYNTHETIC lines drawn with the cursive Hershey font by "
                       f"6 simulated writers (not real handwriting)")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise UsageError(f"--data {source}: give a folder of IAM On-Line lineStrokes XML files, or '{EMBEDDED}'")
    lines = load_iam(path)
    return lines, f"IAM On-Line format folder {source} ({len(lines):,} transcribed lines)"


def split(lines: list[Line]) -> tuple[list[Line], list[Line]]:
    """(train, held-out): the held-out lines are the corpus's tail (a tenth when the corpus is small)."""
    held = min(HELD_OUT_LINES, max(1, len(lines) // 10))
    if len(lines) < 2:
        return lines, lines
    return lines[:-held], lines[-held:]


def offset_scale(lines: list[Line]) -> float:
    """One scale for dx and dy (so shapes keep their proportions): the RMS pen move."""
    moves = np.concatenate([line.offsets[:, :2] for line in lines])
    return float(np.sqrt(np.mean(moves.astype(np.float64) ** 2))) or 1.0


def normalise(offsets: np.ndarray, scale: float) -> np.ndarray:
    out = offsets.astype(np.float32).copy()
    out[:, :2] /= scale
    return out


class Alphabet(Vocabulary):
    """Characters <-> indices for the attention window (index order = Config.alphabet)."""

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.indices(text), dtype=np.int64)


class LineBatches:
    """Random lines padded to the longest in the batch: (points, point_mask, chars, char_mask).

    points (B, T, 3) normalised offsets, point_mask (B, T), chars (B, U) indices, char_mask (B, U).
    Lines longer than ``max_points`` are cut (their text is kept whole; the window need not reach its end).
    """

    def __init__(self, lines: list[Line], alphabet: Alphabet, scale: float, max_points: int) -> None:
        if not lines:
            raise UsageError("no training lines")
        self.points = [normalise(line.offsets[:max_points], scale) for line in lines]
        # The prediction network reads no text: a dummy character keeps the batch layout the same.
        self.chars = [alphabet.encode(line.text) if line.text and alphabet.characters else np.zeros(1, np.int64)
                      for line in lines]

    def batch(self, generator: Any, batch_size: int) -> tuple[Any, ...]:
        import torch

        picks = torch.randint(0, len(self.points), (batch_size,), generator=generator).tolist()
        return collate([self.points[i] for i in picks], [self.chars[i] for i in picks])


def collate(points: list[np.ndarray], chars: list[np.ndarray]) -> tuple[Any, ...]:
    import torch

    steps, letters = max(len(p) for p in points), max(len(c) for c in chars)
    batch = np.zeros((len(points), steps, 3), np.float32)
    point_mask = np.zeros((len(points), steps), np.float32)
    char_ids = np.zeros((len(points), letters), np.int64)
    char_mask = np.zeros((len(points), letters), np.float32)
    for row, (p, c) in enumerate(zip(points, chars)):
        batch[row, : len(p)], point_mask[row, : len(p)] = p, 1.0
        char_ids[row, : len(c)], char_mask[row, : len(c)] = c, 1.0
    return (torch.from_numpy(batch), torch.from_numpy(point_mask), torch.from_numpy(char_ids),
            torch.from_numpy(char_mask))
