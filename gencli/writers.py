"""Write a plugin's output (PNG, text, SVG, WAV, GIF) to a file or stdout, with its provenance inside.

Provenance (plugin, weights id and sha256, seed, options) goes where each format keeps metadata: a PNG tEXt
chunk, an SVG <metadata> element, a WAV LIST/INFO comment, a GIF comment (clips: see gencli.video), a ``.json``
sidecar for text files.
Binary output is never written to a terminal.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from gencli.errors import GencliError, UsageError
from gencli.files import is_terminal_device, open_target, output_target
from gencli.plugin import Audio, Clips, Images, Output, Strokes, Text, Trajectories

PROVENANCE_KEY = "gencli"
EXTENSIONS = {Images: (".png",), Strokes: (".svg", ".png"), Audio: (".wav",), Text: (".txt", ""),
              Clips: (".gif", ".png"), Trajectories: (".svg", ".gif", ".csv")}
KIND_NAMES = {Images: "PNG", Strokes: "SVG", Audio: "WAV", Text: "text", Clips: "GIF", Trajectories: "SVG"}
KINDS = {"image": Images, "strokes": Strokes, "audio": Audio, "text": Text, "video": Clips,
         "trajectories": Trajectories}
# Text may go to any file name except these: they would look like another format (or like a sidecar).
NOT_TEXT_SUFFIXES = (".png", ".svg", ".wav", ".json")


# ---- destinations -------------------------------------------------------------------------------


def check_destination(modality: str, destination: str | None, stdout: IO[Any] | None = None, *,
                      strip: bool = False) -> None:
    """Fail before any model work when the output cannot be written where asked."""
    kind = KINDS[modality]
    if kind is Clips:
        check_clip_destination(destination, strip)
    if destination in (None, "-"):
        if destination == "-" and kind is not Text and _is_terminal(stdout):
            raise UsageError(f"refusing to write {KIND_NAMES[kind]} to a terminal; pipe it or use -o FILE")
        return
    if not destination.strip():
        raise UsageError("-o needs a file name, or '-' for stdout")
    parent = Path(destination).parent
    if not parent.is_dir():
        raise UsageError(f"-o {destination}: folder {parent} does not exist")
    target = output_target(Path(destination)) if "{i}" not in destination and "{t}" not in destination else None
    if target is not None and target.stream:  # /dev/null or a named pipe: any name will do
        if kind is not Text and is_terminal_device(target.path):
            raise UsageError(f"-o {destination}: refusing to write {KIND_NAMES[kind]} to a terminal")
        return
    suffix = Path(destination).suffix.lower()
    if kind is Text:
        if suffix in NOT_TEXT_SUFFIXES:
            raise UsageError(f"-o {destination}: text output is not written as {suffix}; use .txt")
        if "{i}" in destination:
            raise UsageError("-o with {i}: text samples stream one after another into one file")
        check_sidecar(sidecar_path(Path(destination)))
    elif suffix not in EXTENSIONS[kind]:
        allowed = " or ".join(e for e in EXTENSIONS[kind] if e)
        raise UsageError(f"-o {destination}: {modality} output is written as {allowed}")
    if kind is Trajectories and suffix == ".csv" and "{i}" not in destination:
        check_sidecar(sidecar_path(Path(destination)))


def check_clip_destination(destination: str | None, strip: bool) -> None:
    """What only clips have: '{t}' (one PNG per frame) and --strip, which both mean PNG, never GIF."""
    suffix = Path(destination).suffix.lower() if destination not in (None, "-") else ""
    if strip and suffix == ".gif":
        raise UsageError(f"-o {destination}: --strip writes a PNG strip of frames; use a .png name")
    if destination is not None and "{t}" in destination and suffix != ".png":
        raise UsageError(f"-o {destination}: '{{t}}' writes one PNG per frame; use a .png name")


def _is_terminal(stream: Any) -> bool:
    stream = stream if stream is not None else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def default_path(stem: str, suffix: str) -> str:
    """``stem.suffix`` in the working folder, or ``stem-1.suffix``, ... : never overwrite an earlier sample."""
    candidate, number = Path(stem + suffix), 0
    while candidate.exists():
        number += 1
        candidate = Path(f"{stem}-{number}{suffix}")
    return str(candidate)


def write(output: Output, destination: str | None, provenance: dict[str, Any], *, default_stem: str,
          stdout: IO[Any] | None = None, scale: int = 1, strip: bool = False) -> list[str]:
    """Write ``output``; returns the paths written ('-' for stdout).

    ``destination`` None means stdout for text, and for binary output stdout when it is a pipe or a file,
    else a new file named after the plugin. '-' is stdout, refused for binary output at a terminal.
    ``scale`` K enlarges Images and Clips K times (nearest neighbour) as they are encoded. ``strip`` writes
    Clips as a PNG strip of frames where no file name says which format (stdout, or the default name).
    """
    stdout = stdout if stdout is not None else sys.stdout
    if isinstance(output, Images) and scale != 1:
        output = scaled(output, scale)
    if isinstance(output, Clips):
        return _write_clips(output, destination, provenance, default_stem, stdout, scale, strip)
    if isinstance(output, Trajectories):
        return _write_trajectories(output, destination, provenance, default_stem, stdout)
    if isinstance(output, Text):
        return [_write_text(output, destination, provenance, stdout)]
    kind = type(output)
    if kind not in EXTENSIONS:
        raise TypeError(f"plugin returned {kind.__name__}, not one of Images, Text, Strokes, Audio")
    if destination is None:
        destination = "-" if not _is_terminal(stdout) else default_path(default_stem, EXTENSIONS[kind][0])
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


def _write_trajectories(output: Trajectories, destination: str | None, provenance: dict[str, Any],
                        default_stem: str, stdout: IO[Any]) -> list[str]:
    """SVG (stdout's format too), GIF or CSV by the suffix; a CSV file's provenance goes to its sidecar."""
    from gencli import trajectories

    if destination is None:
        destination = "-" if not _is_terminal(stdout) else default_path(default_stem, ".svg")
    if destination == "-":
        if _is_terminal(stdout):
            raise UsageError("refusing to write SVG to a terminal; pipe it or use -o FILE")
        binary = getattr(stdout, "buffer", stdout)
        binary.write(trajectories.svg_bytes(output, provenance))
        binary.flush()
        return ["-"]
    paths = []
    for i, one in enumerate(split(output) if "{i}" in destination else [output]):
        path = Path(destination.replace("{i}", str(i)))
        record = {**provenance, "index": i} if "{i}" in destination else provenance
        if path.suffix.lower() == ".csv" and not output_target(path).stream:
            check_sidecar(sidecar_path(path))
            _write_file(path, trajectories.csv_bytes(one))
            sidecar = trajectories.csv_provenance(one, record)
            _write_file(sidecar_path(path), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        else:
            _write_file(path, trajectories.encode(one, path.suffix.lower(), record))
        paths.append(str(path))
    return paths


def _write_clips(output: Clips, destination: str | None, provenance: dict[str, Any], default_stem: str,
                 stdout: IO[Any], scale: int, strip: bool) -> list[str]:
    from gencli import video

    check_clip_destination(destination, strip)
    if scale != 1:
        frames = video.checked_frames(output)
        check_scale(scale, frames[:, 0], frames.shape[1])
        output = video.scaled_clips(output, scale)
    suffix = video.PNG_SUFFIX if strip else video.GIF_SUFFIX
    if destination is None:
        destination = "-" if not _is_terminal(stdout) else default_path(default_stem, suffix)
    if destination == "-":
        if _is_terminal(stdout):
            raise UsageError(f"refusing to write {suffix[1:].upper()} to a terminal; pipe it or use -o FILE")
        binary = getattr(stdout, "buffer", stdout)
        binary.write(encode_clips(output, suffix, provenance))
        binary.flush()
        return ["-"]
    if "{t}" in destination:
        files = clip_frame_files(output, destination, provenance)
    elif "{i}" in destination:
        files = [(destination.replace("{i}", str(i)),
                  encode_clips(one, Path(destination).suffix.lower(), {**provenance, "index": i}))
                 for i, one in enumerate(video.split_clips(output))]
    else:
        files = [(destination, encode_clips(output, Path(destination).suffix.lower(), provenance))]
    for path, data in files:
        _write_file(Path(path), data)
    return [path for path, _ in files]


def tiled_frames(clips: Clips) -> Any:
    """(N, T, H, W, C) -> (T, H', W', C): at each time step the N clips' frames laid out as an image grid."""
    import numpy as np

    from gencli import video

    frames = video.checked_frames(clips)
    return np.stack([grid(frames[:, t], clips.columns) for t in range(frames.shape[1])])


def clip_strip(clips: Clips) -> Any:
    """(N, T, H, W, C) -> one image: row i holds clip i's T frames from left to right."""
    from gencli import video

    frames = video.checked_frames(clips)
    n, t = frames.shape[:2]
    return grid(frames.reshape(n * t, *frames.shape[2:]), t)  # (rows, cols, C); one frame stays itself


def encode_clips(clips: Clips, suffix: str, provenance: dict[str, Any]) -> bytes:
    """``.png``: the strip of frames; otherwise the animated GIF of the tiled clips."""
    from gencli import video

    if suffix == video.PNG_SUFFIX:
        return png_bytes(clip_strip(clips), {**provenance, "fps": clips.fps})
    return video.gif_bytes(tiled_frames(clips), clips.fps, provenance)


def clip_frame_files(clips: Clips, template: str, provenance: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(path, PNG bytes) for every frame of a '{t}' path: of the tiled grid, or of each clip when '{i}' is there
    too. Frame and clip numbers start at 0; the provenance names them."""
    from gencli import video

    per_clip = video.split_clips(clips) if "{i}" in template else [clips]
    files = []
    for i, one in enumerate(per_clip):
        for t, frame in enumerate(tiled_frames(one)):
            path = template.replace("{i}", str(i)).replace("{t}", str(t))
            where = {"frame": t, "fps": clips.fps} | ({"index": i} if "{i}" in template else {})
            files.append((path, png_bytes(frame, {**provenance, **where})))
    return files


def _write_file(path: Path, data: bytes) -> None:
    target = output_target(path)
    try:
        with open_target(target) as f:
            f.write(data)
    except OSError as error:
        raise GencliError(f"cannot write {path}: {error.strerror or error}") from None


def _write_text(output: Text, destination: str | None, provenance: dict[str, Any], stdout: IO[str]) -> str:
    if destination in (None, "-"):
        for chunk in output.chunks:
            stdout.write(chunk)
            stdout.flush()  # stream as generated: a pipe reader sees text at once
        stdout.write("\n")
        stdout.flush()
        return "-"
    path = Path(destination)
    target = output_target(path)
    sidecar = sidecar_path(path)
    if not target.stream:
        check_sidecar(sidecar)
    try:
        # A file gets the text once it is complete (see gencli.files); a pipe or device gets it as generated.
        with open_target(target) as f:
            for chunk in output.chunks:
                f.write(chunk.encode("utf-8"))
                if target.stream:
                    f.flush()
            f.write(b"\n")
    except OSError as error:
        raise GencliError(f"cannot write {path}: {error.strerror or error}") from None
    if not target.stream:  # no provenance file beside /dev/null or a named pipe
        _write_file(sidecar, (json.dumps(provenance, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return destination


# ---- the provenance sidecar of text files --------------------------------------------------------------


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def check_sidecar(path: Path) -> None:
    """A text file's provenance goes to ``NAME.json``; never replace such a file that gencli did not write."""
    if not os.path.lexists(path):
        return
    try:
        if path.is_file() and _is_provenance(json.loads(path.read_text(encoding="utf-8"))):
            return
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    raise UsageError(f"-o {path.with_suffix('')}: its provenance goes to {path}, which exists and was not written "
                     "by gencli; move it or choose another name")


def _is_provenance(value: Any) -> bool:
    return isinstance(value, dict) and {"plugin", "weights", "seed", "gencli_version"} <= set(value)


def split(output: Output) -> list[Output]:
    """One output per sample, for '{i}' paths."""
    if isinstance(output, Images):
        return [Images(output.pixels[i : i + 1]) for i in range(len(output.pixels))]
    if isinstance(output, Audio):
        return [Audio(output.samples[i : i + 1], output.rate) for i in range(len(output.samples))]
    if isinstance(output, Strokes):
        return [Strokes([line]) for line in output.lines]
    if isinstance(output, Trajectories):
        return [Trajectories(output.positions[i : i + 1], output.roles, output.court, output.rate)
                for i in range(len(output.positions))]
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
    if pixels.ndim != 4 or pixels.dtype != np.uint8 or pixels.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"Images.pixels must be uint8 (N, H, W, 1|2|3|4), got {pixels.dtype} {pixels.shape}")
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


MAX_SCALED_VALUES = 64 * 10**6


def scaled(images: Images, scale: int) -> Images:
    """Each pixel a ``scale`` x ``scale`` block (nearest neighbour keeps the pixels crisp, as generated)."""
    import numpy as np

    pixels = np.asarray(images.pixels)
    if pixels.ndim != 4:  # grid() reports the shape problem
        return images
    check_scale(scale, pixels)
    return Images(pixels.repeat(scale, axis=1).repeat(scale, axis=2), images.columns)  # (N, H*K, W*K, C)


def check_scale(scale: int, pixels: Any, frames: int = 1) -> None:
    """Refuse a --scale that is not a whole number >= 1, or that would blow ``pixels`` (N, H, W, C), shown
    ``frames`` times, up past MAX_SCALED_VALUES."""
    if not isinstance(scale, int) or scale < 1:
        raise UsageError(f"--scale {scale}: must be a whole number of at least 1")
    if pixels.size * frames * scale * scale > MAX_SCALED_VALUES:  # a -n 10000 --scale 64 grid would be tens of GB
        raise UsageError(f"--scale {scale}: {len(pixels):,} images of {pixels.shape[2]}x{pixels.shape[1]} would "
                         f"make more than {MAX_SCALED_VALUES // 10**6} million pixel values; use a smaller "
                         "--scale or -n")


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

    clips = np.asarray(output.samples, dtype=np.float32)
    if clips.ndim == 1:
        clips = clips[None]  # one clip given as (T,)
    if clips.ndim != 2:
        raise ValueError(f"Audio.samples must be (N, T), got shape {clips.shape}")
    clips = np.clip(np.nan_to_num(clips, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    gap = np.zeros(int(output.rate * gap_seconds), dtype=np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip, gap)][:-1]) if len(clips) else gap
    # soundfile cannot write WAV to a pipe (it seeks back to fill in sizes), so encode in memory first.
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", samplerate=output.rate, channels=1, subtype="PCM_16",
                             format="WAV") as f:
        f.comment = json.dumps(provenance, sort_keys=True)  # LIST/INFO ICMT chunk
        f.software = f"gencli {provenance.get('gencli_version', '')}".strip()
        f.write(joined)
    return buffer.getvalue()


# ---- strokes ----------------------------------------------------------------------------------------


def stroke_paths(output: Strokes, line_gap: float = 1.5) -> tuple[list[list[tuple[float, float]]], tuple]:
    """Absolute pen-down polylines for all lines (stacked vertically, a gap of ``line_gap`` / 2 line heights
    between one line's lowest ink and the next line's highest) and their bounding box."""
    import numpy as np

    polylines: list[list[tuple[float, float]]] = []
    y_offset = 0.0
    for line in output.lines:
        line = np.asarray(line, dtype=np.float64)
        xy = np.cumsum(line[:, :2], axis=0)
        if len(xy):  # each line's highest ink sits below the line above (tall letters rise above the start)
            xy[:, 1] += y_offset - xy[:, 1].min()
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
