"""Pen strokes as data: offsets (dx, dy, pen_up), IAM On-Line lineStrokes XML, and --style files.

A line is a float array (T, 3): the pen's move from the previous point (y grows downwards, as in SVG and in
the IAM tablets' coordinates) and 1 in the last column where the pen lifts after that point. The first row
is the move from the origin to the first point. This module needs numpy only.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gencli.errors import UsageError


@dataclass
class Line:
    offsets: np.ndarray  # (T, 3) float32: dx, dy, pen_up
    text: str  # its transcription ("" when unknown)


def polylines_to_offsets(polylines: list[np.ndarray]) -> np.ndarray:
    """Absolute pen-down polylines -> (T, 3) offsets with pen_up 1 on each polyline's last point."""
    points = np.concatenate(polylines, axis=0)
    pen_up = np.concatenate([np.eye(1, len(p), len(p) - 1)[0] for p in polylines])
    moves = np.diff(points, axis=0, prepend=points[:1])  # the first point's move is 0: lines start at the pen
    return np.concatenate([moves, pen_up[:, None]], axis=1)


def offsets_to_points(offsets: np.ndarray) -> np.ndarray:
    """(T, 3) offsets -> (T, 3) absolute x, y and pen_up."""
    return np.concatenate([np.cumsum(offsets[:, :2], axis=0), offsets[:, 2:]], axis=1)


# ---- IAM On-Line Handwriting Database ----------------------------------------------------------------


def read_iam_strokes(path: Path) -> np.ndarray:
    """One lineStrokes XML file (``<StrokeSet><Stroke><Point x= y= time=/>...``) -> (T, 3) offsets."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise UsageError(f"{path}: not a readable lineStrokes XML file ({error})") from None
    polylines = []
    for stroke in root.iter("Stroke"):
        points = [(float(p.get("x", "nan")), float(p.get("y", "nan"))) for p in stroke.iter("Point")]
        if points:
            polylines.append(np.asarray(points, dtype=np.float64))
    if not polylines or any(not np.isfinite(p).all() for p in polylines):
        raise UsageError(f"{path}: no <Stroke> with numeric <Point x= y=> elements")
    return polylines_to_offsets(polylines).astype(np.float32)


def iam_transcription(xml_path: Path, root: Path) -> str | None:
    """The text of a lineStrokes file: a sidecar ``NAME.txt`` next to it, else the IAM ``ascii/`` tree.

    IAM names line N of form ``a01-000u`` ``lineStrokes/a01/a01-000/a01-000u-NN.xml``; its text is line N of the
    ``CSR:`` section of ``ascii/a01/a01-000/a01-000u.txt`` (numbered from 1).
    """
    sidecar = xml_path.with_suffix(".txt")
    if sidecar.is_file():
        return sidecar.read_text(encoding="utf-8").strip()
    form, _, number = xml_path.stem.rpartition("-")
    if not form or not number.isdigit():
        return None
    parts = form.split("-")
    ascii_file = root / "ascii" / parts[0] / "-".join(parts[:2])[: len(parts[0]) + 4] / f"{form}.txt"
    if not ascii_file.is_file():
        matches = list(root.rglob(f"ascii/**/{form}.txt"))
        if not matches:
            return None
        ascii_file = matches[0]
    lines = ascii_file.read_text(encoding="utf-8", errors="replace").splitlines()
    if "CSR:" not in [line.strip() for line in lines]:
        return None
    body = [line.strip() for line in lines[[line.strip() for line in lines].index("CSR:") + 1:] if line.strip()]
    index = int(number) - 1
    return body[index] if 0 <= index < len(body) else None


def load_iam(folder: Path) -> list[Line]:
    """Every transcribed lineStrokes XML under ``folder`` (sorted by path, so splits are stable)."""
    files = sorted(p for p in folder.rglob("*.xml") if "ascii" not in p.relative_to(folder).parts)
    lines = []
    for path in files:
        text = iam_transcription(path, folder)
        if text:
            lines.append(Line(read_iam_strokes(path), text))
    if not lines:
        raise UsageError(f"--data {folder}: no lineStrokes XML file with a transcription (a NAME.txt beside "
                         f"it, or the IAM ascii/ folder)")
    return lines


# ---- --style files ----------------------------------------------------------------------------------


def read_style(path: Path, text: str) -> Line:
    """A priming line: JSON {"text": ..., "strokes": [[dx, dy, pen_up], ...]}, CSV rows dx,dy,pen_up, or an
    IAM lineStrokes XML; ``text`` (--style-text) gives or overrides the transcription."""
    if not path.is_file():
        raise UsageError(f"--style {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return Line(read_iam_strokes(path), text or (iam_transcription(path, path.parent) or ""))
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows, text = data["strokes"], text or str(data.get("text", ""))
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"--style {path}: expected JSON {{\"text\": ..., \"strokes\": [[dx, dy, pen_up], ...]}}"
                             ) from None
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row and not row[0].strip().startswith(("#", "dx"))]
    else:
        raise UsageError(f"--style {path}: use a .json, .csv or lineStrokes .xml file")
    try:
        offsets = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        raise UsageError(f"--style {path}: stroke rows must be three numbers dx, dy, pen_up") from None
    if offsets.ndim != 2 or offsets.shape[1] != 3 or len(offsets) < 2 or not np.isfinite(offsets).all():
        raise UsageError(f"--style {path}: need at least two rows of three finite numbers dx, dy, pen_up")
    return Line(offsets, text)


def write_style_json(line: Line, path: Path) -> None:
    """The JSON --style format (used to ship an example and by the tests)."""
    rows = [[round(float(v), 3) for v in row] for row in line.offsets]
    path.write_text(json.dumps({"text": line.text, "strokes": rows}) + "\n", encoding="utf-8")
