"""Trajectories (moving agents on a court) as files: an SVG court diagram, an animated GIF, CSV; and CSV read back.

The writers (``gencli.writers``) dispatch here by the output's suffix. Provenance goes where each format keeps
it: the SVG's <metadata> element, the GIF's comment extension, and for CSV the same ``NAME.csv.json`` sidecar
text files get (written by ``gencli.writers``, which also adds the frame rate and court size that
:func:`read_csv` reads back from it).

CSV layout, one row per agent per frame: ``sequence,frame,agent,x,y`` (a header row first). ``agent`` is the
agent's role name (or any id); ``frame`` counts from 0 at the file's frame rate. Torch-free.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from gencli.errors import UsageError
from gencli.plugin import Trajectories

CSV_COLUMNS = ("sequence", "frame", "agent", "x", "y")
BALL = "ball"
HALF_COURT = (47.0, 50.0)  # feet: baseline to half-court line, sideline to sideline
# Distinct colours for the players (Tableau 10 order); the ball is orange and dashed.
PLAYER_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
                  "#bcbd22", "#393b79")
BALL_COLOUR = "#ff7f0e"
LINE_COLOUR = "#5a4a3a"
FLOOR_COLOUR = "#f6ead2"
MAX_GIF_PIXELS = 500 * 10**6  # about 100 plays of 50 frames


def check(output: Trajectories) -> Any:
    """The positions as a float (N, T, A, 2) array, after checking the value's shape and roles."""
    import numpy as np

    positions = np.asarray(output.positions, dtype=np.float64)
    if positions.ndim != 4 or positions.shape[-1] != 2 or 0 in positions.shape[:3]:
        raise ValueError(f"Trajectories.positions must be (N, T, A, 2), got shape {positions.shape}")
    if len(output.roles) != positions.shape[2] or len(set(output.roles)) != len(output.roles):
        raise ValueError(f"Trajectories.roles must name each of the {positions.shape[2]} agents once")
    if not np.isfinite(positions).all():
        raise ValueError("Trajectories.positions holds NaN or infinite values")
    return positions


def colours(roles: Sequence[str]) -> list[str]:
    players = iter(PLAYER_COLOURS * (len(roles) // len(PLAYER_COLOURS) + 1))
    return [BALL_COLOUR if role == BALL else next(players) for role in roles]


def panel_grid(n: int) -> tuple[int, int]:
    """(columns, rows) of a near-square grid of ``n`` court panels."""
    columns = math.ceil(math.sqrt(n))
    return columns, math.ceil(n / columns)


# ---- the court's lines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourtLines:
    """A court's markings in court units: straight segments, full circles and arcs (centre, radius, from, to in
    degrees, counter-clockwise in court coordinates)."""

    segments: tuple[tuple[float, float, float, float], ...]
    circles: tuple[tuple[float, float, float], ...]
    arcs: tuple[tuple[float, float, float, float, float], ...]


def court_lines(court: tuple[float, float]) -> CourtLines:
    """An NBA half court's lines when ``court`` is 47 x 50 ft; otherwise only the outline (a pitch, a rink...)."""
    length, width = court
    outline = ((0, 0, length, 0), (length, 0, length, width), (length, width, 0, width), (0, width, 0, 0))
    if (length, width) != HALF_COURT:
        return CourtLines(outline, (), ())
    basket_x, middle = 5.25, width / 2  # the rim's centre is 63 in from the baseline
    lane = ((0, 17, 19, 17), (19, 17, 19, 33), (19, 33, 0, 33))  # the 16 ft wide paint, 19 ft to the free-throw line
    corner_threes = ((0, 3, 14, 3), (0, 47, 14, 47))  # 22 ft from the basket in the corners
    backboard = ((4, 22, 4, 28),)
    corner_angle = math.degrees(math.asin((middle - 3) / 23.75))  # where the 23.75 ft arc meets the corner lines
    return CourtLines(
        segments=outline + lane + corner_threes + backboard,
        circles=((basket_x, middle, 0.75),),  # the rim
        arcs=((basket_x, middle, 23.75, -corner_angle, corner_angle),  # the three-point arc
              (19, middle, 6, -90, 90),  # the free-throw circle (the half away from the basket)
              (basket_x, middle, 4, -90, 90),  # the restricted area
              (length, middle, 6, 90, 270)),  # the centre circle's half on this side
    )


def arc_points(cx: float, cy: float, radius: float, start: float, end: float, steps: int = 48) -> list[tuple]:
    return [(cx + radius * math.cos(math.radians(a)), cy + radius * math.sin(math.radians(a)))
            for a in (start + (end - start) * i / steps for i in range(steps + 1))]


# ---- SVG ----------------------------------------------------------------------------------------------------


def svg_bytes(output: Trajectories, provenance: dict[str, Any], pixels_per_unit: float = 10.0) -> bytes:
    """One court panel per sequence (a near-square grid), in court units; in each, one <path class="agent"> per
    agent, an open circle where it starts and a filled one where it ends; the ball's path dashed."""
    positions = check(output)  # (N, T, A, 2)
    length, width = output.court
    n, _, agents, _ = positions.shape
    columns, rows = panel_grid(n)
    gap, legend = 2.0, 3.0
    total_w, total_h = columns * (length + gap) + gap, rows * (width + gap) + gap + legend
    paint = colours(output.roles)
    court = _svg_court(court_lines(output.court), output.court)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {total_w:g} {total_h:g}" '
        f'width="{total_w * pixels_per_unit:g}" height="{total_h * pixels_per_unit:g}">',
        f"  <metadata>{escape(json.dumps(provenance, sort_keys=True))}</metadata>",
        f'  <rect width="{total_w:g}" height="{total_h:g}" fill="white"/>',
    ]
    for index in range(n):
        row, column = divmod(index, columns)
        x0, y0 = gap + column * (length + gap), gap + row * (width + gap)
        parts.append(f'  <g class="play" data-sequence="{index}" transform="translate({x0:g} {y0:g})">')
        parts.append(court)
        parts.append('    <g class="agents" fill="none" stroke-width="0.35" stroke-linecap="round" '
                     'stroke-linejoin="round">')
        for agent in range(agents):
            track = positions[index, :, agent]  # (T, 2)
            d = "M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in track)
            dash = ' stroke-dasharray="0.8 0.6"' if output.roles[agent] == BALL else ""
            parts.append(f'      <path class="agent" data-agent={quoteattr(output.roles[agent])} '
                         f'stroke="{paint[agent]}"{dash} d="{d}"/>')
        for agent in range(agents):
            (sx, sy), (ex, ey) = positions[index, 0, agent], positions[index, -1, agent]
            radius = 0.5 if output.roles[agent] == BALL else 0.7
            parts.append(f'      <circle class="start" cx="{sx:.2f}" cy="{sy:.2f}" r="{radius}" fill="white" '
                         f'stroke="{paint[agent]}"/>')
            parts.append(f'      <circle class="end" cx="{ex:.2f}" cy="{ey:.2f}" r="{radius}" '
                         f'fill="{paint[agent]}" stroke="{paint[agent]}"/>')
        parts.append("    </g>\n  </g>")
    parts.append(_svg_legend(output.roles, paint, gap, total_h - legend + 1.2))
    parts.append("</svg>\n")
    return "\n".join(parts).encode("utf-8")


def _svg_court(lines: CourtLines, court: tuple[float, float]) -> str:
    shapes = [f'<line x1="{a:g}" y1="{b:g}" x2="{c:g}" y2="{d:g}"/>' for a, b, c, d in lines.segments]
    shapes += [f'<circle cx="{x:g}" cy="{y:g}" r="{r:g}"/>' for x, y, r in lines.circles]
    for arc in lines.arcs:
        shapes.append('<polyline points="' + " ".join(f"{x:.2f},{y:.2f}" for x, y in arc_points(*arc)) + '"/>')
    return (f'    <g class="court" fill="none" stroke="{LINE_COLOUR}" stroke-width="0.2">\n'
            f'      <rect class="floor" width="{court[0]:g}" height="{court[1]:g}" fill="{FLOOR_COLOUR}" '
            'stroke="none"/>\n'
            + "\n".join("      " + shape for shape in shapes) + "\n    </g>")


def _svg_legend(roles: Sequence[str], paint: Sequence[str], x: float, y: float) -> str:
    items, cursor = [], x
    for role, colour in zip(roles, paint):
        dash = ' stroke-dasharray="0.8 0.6"' if role == BALL else ""
        items.append(f'  <line x1="{cursor:g}" y1="{y:g}" x2="{cursor + 2:g}" y2="{y:g}" stroke="{colour}" '
                     f'stroke-width="0.35"{dash}/>')
        items.append(f'  <text x="{cursor + 2.5:g}" y="{y + 0.5:g}" font-size="1.5" font-family="sans-serif" '
                     f'fill="{LINE_COLOUR}">{escape(role)}</text>')
        cursor += 3.5 + 0.9 * len(role)
    return '  <g class="legend">\n' + "\n".join(items) + "\n  </g>"


# ---- animated GIF ---------------------------------------------------------------------------------------------


def gif_bytes(output: Trajectories, provenance: dict[str, Any], pixels_per_unit: float = 6.0) -> bytes:
    """One GIF frame per time step, all sequences side by side (a near-square grid of courts): each agent a dot
    with its trail so far; a bar along the bottom shows the time elapsed (and keeps every frame distinct, so
    none is merged into the one before it). Frame time 1 / rate, rounded to GIF's 1/100 s."""
    from PIL import Image, ImageDraw

    positions = check(output)  # (N, T, A, 2)
    n, frames, agents, _ = positions.shape
    length, width = output.court
    columns, rows = panel_grid(n)
    scale, margin, bar = pixels_per_unit, 8, 6
    panel_w, panel_h = round(length * scale), round(width * scale)
    size = (columns * (panel_w + margin) + margin, rows * (panel_h + margin) + margin + bar)
    if size[0] * size[1] * frames > MAX_GIF_PIXELS:  # every frame is held in memory until the GIF is encoded
        raise UsageError(f"a GIF of {n:,} plays x {frames:,} frames would hold {size[0] * size[1] * frames / 1e6:,.0f} "
                         f"million pixels (at most {MAX_GIF_PIXELS // 10**6:,} million); write fewer plays (-n) or "
                         "frames, or write .svg or .csv")
    palette_colours = [FLOOR_COLOUR, LINE_COLOUR, "#ffffff", *dict.fromkeys(colours(output.roles))]
    index_of = {colour: i for i, colour in enumerate(palette_colours)}
    palette = [channel for colour in palette_colours for channel in _rgb(colour)]
    origins = [(margin + (i % columns) * (panel_w + margin), margin + (i // columns) * (panel_h + margin))
               for i in range(n)]
    to_pixels = positions * scale  # (N, T, A, 2)

    background = Image.new("P", size, index_of["#ffffff"])
    background.putpalette(palette)
    draw = ImageDraw.Draw(background)
    lines = court_lines(output.court)
    for ox, oy in origins:
        draw.rectangle([ox, oy, ox + panel_w, oy + panel_h], fill=index_of[FLOOR_COLOUR])
        for a, b, c, d in lines.segments:
            draw.line([(ox + a * scale, oy + b * scale), (ox + c * scale, oy + d * scale)], fill=1)
        for x, y, r in lines.circles:
            draw.ellipse([ox + (x - r) * scale, oy + (y - r) * scale, ox + (x + r) * scale, oy + (y + r) * scale],
                         outline=1)
        for arc in lines.arcs:
            draw.line([(ox + x * scale, oy + y * scale) for x, y in arc_points(*arc)], fill=1)

    paint = [index_of[c] for c in colours(output.roles)]
    trails = background  # the trails so far, one segment added per frame
    trail_draw = ImageDraw.Draw(trails)
    images = []
    for t in range(frames):
        for index, (ox, oy) in enumerate(origins):
            for agent in range(agents):
                ball = output.roles[agent] == BALL
                if t and (not ball or t % 2):  # the ball's trail dashed, as in the SVG
                    (x0, y0), (x1, y1) = to_pixels[index, t - 1, agent], to_pixels[index, t, agent]
                    trail_draw.line([(ox + x0, oy + y0), (ox + x1, oy + y1)], fill=paint[agent], width=1 if ball else 2)
        frame = trails.copy()
        draw = ImageDraw.Draw(frame)
        for index, (ox, oy) in enumerate(origins):
            for agent in range(agents):
                x, y = ox + to_pixels[index, t, agent, 0], oy + to_pixels[index, t, agent, 1]
                r = 2.5 if output.roles[agent] == BALL else 4
                draw.ellipse([x - r, y - r, x + r, y + r], fill=paint[agent], outline=1)
        draw.rectangle([0, size[1] - bar, round(size[0] * (t + 1) / frames), size[1]], fill=1)
        images.append(frame)
    buffer = io.BytesIO()
    duration = max(20, round(1000 / output.rate / 10) * 10)  # ms; GIF counts hundredths of a second
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                   comment=json.dumps(provenance, sort_keys=True).encode("utf-8"))
    return buffer.getvalue()


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


# ---- CSV --------------------------------------------------------------------------------------------------


def csv_bytes(output: Trajectories) -> bytes:
    positions = check(output)  # (N, T, A, 2)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n, frames, agents, _ = positions.shape
    for index in range(n):
        for t in range(frames):
            for agent in range(agents):
                x, y = positions[index, t, agent]
                writer.writerow((index, t, output.roles[agent], f"{x:.3f}", f"{y:.3f}"))
    return buffer.getvalue().encode("utf-8")


def csv_provenance(output: Trajectories, provenance: dict[str, Any]) -> dict[str, Any]:
    """The CSV sidecar: the provenance plus what the rows do not say (frame rate, court size, agent order)."""
    return {**provenance, "frame_rate_hz": float(output.rate), "court": [float(v) for v in output.court],
            "agents": list(output.roles)}


def encode(output: Trajectories, suffix: str, provenance: dict[str, Any]) -> bytes:
    if suffix == ".gif":
        return gif_bytes(output, provenance)
    if suffix == ".csv":
        return csv_bytes(output)
    return svg_bytes(output, provenance)


@dataclass
class Plays:
    """Sequences read from a CSV file: one float array (T_i, A, 2) per sequence, agents in ``agents`` order."""

    sequences: list[Any]
    agents: list[str]
    rate: float | None  # frames per second from the file's sidecar, None when it has none


def read_csv(path: str | Path, flag: str = "--data") -> Plays:
    """Read ``sequence,frame,agent,x,y`` rows (any column order, extra columns ignored). Every sequence must give
    every agent a position in every one of its frames 0..T-1, and have at least two frames. Problems end in one
    UsageError line naming the file and the row."""
    import numpy as np

    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a pipe or device that might never end
        raise UsageError(f"{flag} {path}: not a regular file; give a CSV file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{flag} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{flag} {path}: cannot read it as UTF-8 text ({error})") from None
    reader = csv.reader(io.StringIO(text))
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        raise UsageError(f"{flag} {path}: missing column{'s' * (len(missing) > 1)} {', '.join(missing)} "
                         f"(the header must name {','.join(CSV_COLUMNS)})")
    column = {name: header.index(name) for name in CSV_COLUMNS}
    cells: dict[str, dict[int, dict[str, tuple[float, float]]]] = {}
    agents: dict[str, None] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise UsageError(f"{flag} {path}, line {line}: {len(row)} values, the header names {len(header)}")
        sequence, agent = row[column["sequence"]].strip(), row[column["agent"]].strip()
        try:
            frame = int(row[column["frame"]])
            x, y = float(row[column["x"]]), float(row[column["y"]])
        except ValueError:
            raise UsageError(f"{flag} {path}, line {line}: frame must be a whole number and x, y numbers, got "
                             f"{row[column['frame']]!r}, {row[column['x']]!r}, {row[column['y']]!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)) or frame < 0:
            raise UsageError(f"{flag} {path}, line {line}: x and y must be finite and frame at least 0")
        agents.setdefault(agent)
        frames = cells.setdefault(sequence, {}).setdefault(frame, {})
        if agent in frames:
            raise UsageError(f"{flag} {path}, line {line}: agent {agent!r} appears twice in frame {frame} of "
                             f"sequence {sequence!r}")
        frames[agent] = (x, y)
    if not cells:
        raise UsageError(f"{flag} {path}: no rows after the header")
    names = list(agents)
    sequences = []
    for sequence, frames in cells.items():
        order = sorted(frames)
        if len(order) < 2:
            raise UsageError(f"{flag} {path}: sequence {sequence!r} has a single frame; a trajectory needs at "
                             "least two")
        if order != list(range(len(order))):
            gap = next(t for i, t in enumerate(order) if t != i)
            raise UsageError(f"{flag} {path}: sequence {sequence!r} skips frame {gap - 1 if gap else 0}; frames "
                             "must run 0, 1, 2, ... without gaps")
        array = np.zeros((len(order), len(names), 2))  # (T, A, 2)
        for t in order:
            absent = [name for name in names if name not in frames[t]]
            if absent:
                raise UsageError(f"{flag} {path}: sequence {sequence!r}, frame {t} has no row for agent "
                                 f"{absent[0]!r}; every agent needs a position in every frame")
            array[t] = [frames[t][name] for name in names]
        sequences.append(array)
    return Plays(sequences, names, _sidecar_rate(path))


def _sidecar_rate(path: Path) -> float | None:
    """The frame rate gencli recorded beside a CSV it wrote (``NAME.csv.json``), if there is one."""
    try:
        rate = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8")).get("frame_rate_hz")
    except (OSError, ValueError, AttributeError):
        return None
    return float(rate) if isinstance(rate, (int, float)) and rate > 0 else None


def resample(track: Any, from_rate: float, to_rate: float) -> Any:
    """(T, A, 2) positions at ``from_rate`` frames per second -> the same time span at ``to_rate``, by linear
    interpolation between the frames on either side."""
    import numpy as np

    if math.isclose(from_rate, to_rate):
        return np.asarray(track, dtype=np.float64)
    track = np.asarray(track, dtype=np.float64)
    duration = (len(track) - 1) / from_rate  # seconds from the first frame to the last
    times = np.arange(int(math.floor(duration * to_rate + 1e-9)) + 1) / to_rate  # (T',)
    source = np.arange(len(track)) / from_rate  # (T,)
    flat = track.reshape(len(track), -1)  # (T, A*2)
    out = np.stack([np.interp(times, source, flat[:, k]) for k in range(flat.shape[1])], axis=1)  # (T', A*2)
    return out.reshape(len(times), *track.shape[1:])


def check_inside(plays: Plays, court: tuple[float, float], path: str | Path, flag: str = "--data",
                 hint: str = "") -> None:
    """One line for the first position outside 0 <= x <= length, 0 <= y <= width; ``hint`` ends it."""
    import numpy as np

    length, width = court
    for track in plays.sequences:  # (T, A, 2)
        outside = (track[..., 0] < 0) | (track[..., 0] > length) | (track[..., 1] < 0) | (track[..., 1] > width)
        if outside.any():
            t, agent = (int(v) for v in np.argwhere(outside)[0])
            x, y = track[t, agent]
            raise UsageError(f"{flag} {path}: agent {plays.agents[agent]!r} is at ({x:g}, {y:g}) in frame {t}, "
                             f"outside the declared {length:g} x {width:g} court (0 <= x <= {length:g}, "
                             f"0 <= y <= {width:g}){hint}")
