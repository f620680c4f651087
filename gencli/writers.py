"""Write a plugin's output (PNG, text, SVG, WAV) to a file or stdout, with its provenance inside.

Provenance (plugin, weights id and sha256, seed, options) goes where each format keeps metadata: a PNG tEXt
chunk, an SVG <metadata> element, a WAV LIST/INFO comment, a ``.json`` sidecar for text files.
Binary output is never written to a terminal.
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from gencli.errors import UsageError
from gencli.plugin import Audio, Images, Output, Strokes, Text

PROVENANCE_KEY = "gencli"
EXTENSIONS = {Images: (".png",), Strokes: (".svg", ".png"), Audio: (".wav",), Text: (".txt", "")}
KIND_NAMES = {Images: "PNG", Strokes: "SVG", Audio: "WAV", Text: "text"}


# ---- destinations -------------------------------------------------------------------------------


def check_destination(modality: str, destination: str | None, stdout: IO[bytes] | None = None) -> None:
    """Fail before any model work when the output cannot be written where asked."""
    kind = {"image": Images, "strokes": Strokes, "audio": Audio, "text": Text}[modality]
    if destination in (None, "-"):
        if destination == "-" and kind is not Text and _is_terminal(stdout):
            raise UsageError(f"refusing to write {KIND_NAMES[kind]} to a terminal; pipe it or use -o FILE")
        return
    suffix = Path(destination).suffix.lower()
    if suffix not in EXTENSIONS[kind]:
        allowed = " or ".join(e for e in EXTENSIONS[kind] if e)
        raise UsageError(f"-o {destination}: {modality} output is written as {allowed}")
    if "{i}" in destination and kind is Text:
        raise UsageError("-o with {i}: text samples stream one after another into one file")
    parent = Path(destination).parent
    if not parent.is_dir():
        raise UsageError(f"-o {destination}: folder {parent} does not exist")


def _is_terminal(stream: Any) -> bool:
    stream = stream if stream is not None else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def write(output: Output, destination: str | None, provenance: dict[str, Any], *, default_stem: str,
          stdout: IO[Any] | None = None) -> list[str]:
    """Write ``output``; returns the paths written ('-' for stdout)."""
    stdout = stdout if stdout is not None else sys.stdout
    if isinstance(output, Text):
        return [_write_text(output, destination, provenance, stdout)]
    kind = type(output)
    if destination is None:
        # Piped: stream the bytes on; at a terminal: a file named after the plugin.
        destination = "-" if not _is_terminal(stdout) else default_stem + EXTENSIONS[kind][0]
    if destination == "-":
        if _is_terminal(stdout):
            raise UsageError(f"refusing to write {KIND_NAMES[kind]} to a terminal; pipe it or use -o FILE")
        data = encode(output, EXTENSIONS[kind][0], provenance)
        binary = getattr(stdout, "buffer", stdout)
        binary.write(data)
        binary.flush()
        return ["-"]
    if "{i}" in destination:
        paths = []
        for i, one in enumerate(split(output)):
            path = destination.replace("{i}", str(i))
            _write_file(Path(path), encode(one, Path(path).suffix.lower(), {**provenance, "index": i}))
            paths.append(path)
        return paths
    _write_file(Path(destination), encode(output, Path(destination).suffix.lower(), provenance))
    return [destination]


def _write_file(path: Path, data: bytes) -> None:
    from gencli.weights import atomic_write

    atomic_write(path, data)


def _write_text(output: Text, destination: str | None, provenance: dict[str, Any], stdout: IO[str]) -> str:
    if destination in (None, "-"):
        for chunk in output.chunks:
            stdout.write(chunk)
            stdout.flush()  # stream as generated: a pipe reader sees text at once
        stdout.write("\n")
        stdout.flush()
        return "-"
    path = Path(destination)
    with path.open("w", encoding="utf-8") as f:
        for chunk in output.chunks:
            f.write(chunk)
        f.write("\n")
    path.with_name(path.name + ".json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return destination


def split(output: Output) -> list[Output]:
    """One output per sample, for '{i}' paths."""
    if isinstance(output, Images):
        return [Images(output.pixels[i : i + 1]) for i in range(len(output.pixels))]
    if isinstance(output, Audio):
        return [Audio(output.samples[i : i + 1], output.rate) for i in range(len(output.samples))]
    if isinstance(output, Strokes):
        return [Strokes([line]) for line in output.lines]
    raise TypeError(type(output))


def encode(output: Output, suffix: str, provenance: dict[str, Any]) -> bytes:
    if isinstance(output, Images):
        return png_bytes(grid(output.pixels, output.columns), provenance)
    if isinstance(output, Audio):
        return wav_bytes(output, provenance)
    if isinstance(output, Strokes):
        return png_bytes(render_strokes(output), provenance) if suffix == ".png" else svg_bytes(output, provenance)
    raise TypeError(type(output))


# ---- images -----------------------------------------------------------------------------------------


def grid(pixels: Any, columns: int | None = None, pad: int = 2, pad_value: int = 128) -> Any:
    """(N, H, W, C) uint8 -> one (H', W', C) image, near-square unless ``columns`` is given."""
    import numpy as np

    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.dtype != np.uint8 or pixels.shape[-1] not in (1, 3):
        raise ValueError(f"Images.pixels must be uint8 (N, H, W, 1|3), got {pixels.dtype} {pixels.shape}")
    n, h, w, c = pixels.shape
    if n == 1:
        return pixels[0]
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y : y + h, x : x + w] = pixels[i]
    return canvas


def png_bytes(image: Any, provenance: dict[str, Any]) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(PROVENANCE_KEY, json.dumps(provenance, sort_keys=True))
    array = image[..., 0] if image.shape[-1] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


# ---- audio ----------------------------------------------------------------------------------------


def wav_bytes(output: Audio, provenance: dict[str, Any], gap_seconds: float = 0.25) -> bytes:
    """16-bit PCM mono; several clips are joined with a short silence between them."""
    import numpy as np
    import soundfile

    clips = np.clip(np.asarray(output.samples, dtype=np.float32), -1.0, 1.0)
    gap = np.zeros(int(output.rate * gap_seconds), dtype=np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip, gap)][:-1]) if len(clips) else gap
    # soundfile cannot write WAV to a pipe (it seeks back to fill in sizes), so encode in memory first.
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", samplerate=output.rate, channels=1, subtype="PCM_16",
                             format="WAV") as f:
        f.comment = json.dumps(provenance, sort_keys=True)  # LIST/INFO ICMT chunk
        f.software = "gencli"
        f.write(joined)
    return buffer.getvalue()


# ---- strokes ----------------------------------------------------------------------------------------


def stroke_paths(output: Strokes, line_gap: float = 1.5) -> tuple[list[list[tuple[float, float]]], tuple]:
    """Absolute pen-down polylines for all lines (stacked vertically) and their bounding box."""
    import numpy as np

    polylines: list[list[tuple[float, float]]] = []
    y_offset = 0.0
    for line in output.lines:
        line = np.asarray(line, dtype=np.float64)
        xy = np.cumsum(line[:, :2], axis=0)
        xy[:, 1] += y_offset
        current: list[tuple[float, float]] = []
        for (x, y), pen_up in zip(xy, line[:, 2]):
            current.append((float(x), float(y)))
            if pen_up > 0.5:
                if len(current) > 1:
                    polylines.append(current)
                current = []
        if len(current) > 1:
            polylines.append(current)
        height = (xy[:, 1].max() - xy[:, 1].min()) if len(xy) else 0.0
        y_offset = (xy[:, 1].max() if len(xy) else y_offset) + line_gap * max(height, 1.0) * 0.5
    points = [p for poly in polylines for p in poly] or [(0.0, 0.0)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return polylines, (min(xs), min(ys), max(xs), max(ys))


def svg_bytes(output: Strokes, provenance: dict[str, Any], margin: float = 5.0) -> bytes:
    """One <path> per pen-down stroke, viewBox fitted to the ink: plotter-friendly."""
    polylines, (x0, y0, x1, y1) = stroke_paths(output)
    width, height = x1 - x0 + 2 * margin, y1 - y0 + 2 * margin
    paths = []
    for poly in polylines:
        d = "M" + " L".join(f"{x - x0 + margin:.2f},{y - y0 + margin:.2f}" for x, y in poly)
        paths.append(f'  <path d="{d}"/>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.2f} {height:.2f}" '
        f'width="{width:.2f}" height="{height:.2f}">\n'
        f"  <metadata>{escape(json.dumps(provenance, sort_keys=True))}</metadata>\n"
        '  <g fill="none" stroke="black" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round">\n'
        + "\n".join(paths) + "\n  </g>\n</svg>\n"
    )
    return svg.encode("utf-8")


def render_strokes(output: Strokes, scale: float = 2.0, margin: int = 10) -> Any:
    import numpy as np
    from PIL import Image, ImageDraw

    polylines, (x0, y0, x1, y1) = stroke_paths(output)
    size = (int((x1 - x0) * scale) + 2 * margin, int((y1 - y0) * scale) + 2 * margin)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for poly in polylines:
        draw.line([((x - x0) * scale + margin, (y - y0) * scale + margin) for x, y in poly], fill=0,
                  width=max(1, int(scale)))
    return np.asarray(image)[..., None]
