"""The default training data: synthetic handwriting drawn with the cursive Hershey stroke font.

Nothing here is real handwriting. Each line of text is laid out with the ``cursive`` font of the Hershey-Fonts
package, then bent by a "writer" (a fixed style: slant, letter width, height, word spacing, pen speed and
tremor) and by a little per-line variation (baseline tilt, jitter phases), so a model has styles to learn and
no two lines are identical. Everything is drawn from seeded generators, so the corpus is the same everywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np

from gencli.errors import GencliError
from gencli_handwriting.strokes import Line, polylines_to_offsets

FONT = "cursive"
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,'"
NUM_WRITERS = 6
WRITER_SEED = 20130804  # Graves' paper went on arXiv in August 2013
WORDS_IN_LIST = 1500


@dataclass(frozen=True)
class Writer:
    """One synthetic writer's habits (Hershey font units: an x-height is about 9)."""

    slant: float  # x shift per unit of height above the baseline (italic when > 0)
    width: float  # horizontal scale
    height: float  # vertical scale
    word_gap: float  # scale of the space between words
    point_spacing: float  # pen distance between recorded points (the tablet's sampling vs. pen speed)
    tremor: float  # amplitude of the smooth jitter


def writers() -> list[Writer]:
    rng = np.random.default_rng(WRITER_SEED)
    return [Writer(slant=float(rng.uniform(-0.05, 0.45)), width=float(rng.uniform(0.8, 1.2)),
                   height=float(rng.uniform(0.85, 1.15)), word_gap=float(rng.uniform(0.5, 1.0)),
                   point_spacing=float(rng.uniform(4.2, 5.4)), tremor=float(rng.uniform(0.15, 0.5)))
            for _ in range(NUM_WRITERS)]


@cache
def word_list() -> tuple[str, ...]:
    """The commonest plain lowercase words of Python's own documentation (pydoc_data ships with CPython)."""
    from pydoc_data.topics import topics

    counts = Counter(word for name in sorted(topics) for word in re.findall(r"\b[a-z]+\b", topics[name])
                     if 2 <= len(word) <= 9)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(word for word, _ in ranked[:WORDS_IN_LIST])


@cache
def _font():  # the font file is parsed once per process
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        raise GencliError("the default handwriting data need the Hershey-Fonts package: "
                          "pip install Hershey-Fonts (or train on IAM On-Line files with --data DIR)") from None
    font = HersheyFonts()
    font.load_default_font(FONT)
    return font


def random_text(rng: np.random.Generator, max_chars: int = 20) -> str:
    """One to four words, now and then with a comma, full stop or apostrophe."""
    words = word_list()
    text = words[int(rng.integers(len(words)))]
    for _ in range(int(rng.integers(0, 4))):
        word = words[int(rng.integers(len(words)))]
        if len(text) + 1 + len(word) > max_chars:
            break
        separator = " " if rng.random() > 0.1 else rng.choice([", ", ". "])
        text += separator + word
    if rng.random() < 0.05:
        text += "'s"
    if rng.random() < 0.1:
        text += "."
    return text


def glyph_polylines(text: str, writer: Writer, rng: np.random.Generator) -> list[np.ndarray]:
    """Pen-down polylines (absolute, y down) of ``text`` in the writer's hand, before resampling."""
    font = _font()
    glyphs = dict(zip(text, font.glyphs_for_text(text)))  # every ALPHABET character has a glyph
    strokes: list[list[tuple[float, float]]] = []
    x = 0.0
    for char in text:
        glyph = glyphs[char]
        advance = glyph.char_width * (writer.word_gap if char == " " else 1.0)
        for stroke in glyph.strokes:
            points = [(x + px - glyph.left_offset, float(py)) for px, py in stroke]
            if strokes and np.allclose(strokes[-1][-1], points[0]):
                strokes[-1].extend(points[1:])  # cursive letters join: one pen-down stroke
            else:
                strokes.append(points)
        x += advance
    jitter = _line_jitter(writer, rng)  # one draw per line: the whole line shares its slant and wobble
    return [_bend(np.asarray(stroke, dtype=np.float64), writer, jitter) for stroke in strokes]


@dataclass(frozen=True)
class _Jitter:
    slant: float
    width: float
    height: float
    tilt: float
    phases: tuple[float, ...]
    frequencies: tuple[float, ...]


def _line_jitter(writer: Writer, rng: np.random.Generator) -> _Jitter:
    return _Jitter(slant=writer.slant + float(rng.normal(0, 0.04)), width=writer.width * float(rng.normal(1, 0.04)),
                   height=writer.height * float(rng.normal(1, 0.04)), tilt=float(rng.normal(0, 0.02)),
                   phases=tuple(rng.uniform(0, 2 * np.pi, 4)), frequencies=tuple(rng.uniform(0.05, 0.2, 4)))


def _bend(points: np.ndarray, writer: Writer, jitter: _Jitter) -> np.ndarray:
    """Shear, scale, tilt and a smooth wobble that depends on the position along the line."""
    x, y = points[:, 0], points[:, 1] - 9.0  # 9: the font's baseline, so slant pivots on the baseline
    a, b, c, d = jitter.phases
    fa, fb, fc, fd = jitter.frequencies
    wobble_x = writer.tremor * (np.sin(fa * x + a) + 0.5 * np.sin(fc * y + c))
    wobble_y = writer.tremor * (np.sin(fb * x + b) + 0.5 * np.sin(fd * x * 0.3 + d))
    new_x = (x - jitter.slant * y) * jitter.width + wobble_x
    new_y = y * jitter.height + jitter.tilt * new_x + wobble_y
    return np.stack([new_x, new_y], axis=1)


def resample(polyline: np.ndarray, spacing: float) -> np.ndarray:
    """Points about every ``spacing`` units of ink, as a tablet samples a steady pen; sharp corners (cusps,
    loop tips) are kept as points, so coarse sampling does not round them off."""
    if len(polyline) < 3:
        return polyline
    moves = np.diff(polyline, axis=0)
    unit = moves / np.maximum(np.linalg.norm(moves, axis=1, keepdims=True), 1e-9)
    turning = np.einsum("ij,ij->i", unit[:-1], unit[1:]) < 0.0  # direction changes by more than 90 degrees
    corners = [0, *(np.nonzero(turning)[0] + 1), len(polyline) - 1]
    pieces = [_resample_piece(polyline[a : b + 1], spacing) for a, b in zip(corners[:-1], corners[1:]) if b > a]
    return np.concatenate([pieces[0]] + [piece[1:] for piece in pieces[1:]], axis=0)


def _resample_piece(polyline: np.ndarray, spacing: float) -> np.ndarray:
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(polyline, axis=0), axis=1))])
    count = max(2, int(round(arc[-1] / spacing)) + 1)
    targets = np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(targets, arc, polyline[:, 0]), np.interp(targets, arc, polyline[:, 1])], axis=1)


def synthesize_line(text: str, writer: Writer, rng: np.random.Generator) -> Line:
    polylines = [resample(p, writer.point_spacing * float(rng.uniform(0.9, 1.1)))
                 for p in glyph_polylines(text, writer, rng)]
    offsets = polylines_to_offsets(polylines)
    offsets[:, :2] += rng.normal(0, 0.08, size=(len(offsets), 2))  # sensor noise
    return Line(offsets.astype(np.float32), text)


def corpus(num_lines: int, seed: int) -> list[Line]:
    """``num_lines`` lines, writers taking turns; the same ``seed`` gives the same lines."""
    hands = writers()
    rng = np.random.default_rng(seed)
    return [synthesize_line(random_text(rng), hands[i % len(hands)], rng) for i in range(num_lines)]
