"""Encoding ``Clips`` (short videos, uint8 (N, T, H, W, C)): animated GIF, PNG strips and single frames.

* GIF (the default): the N clips tiled into one animated grid, played at the clips' frame rate and looped
  forever; the provenance JSON is the GIF comment. All frames share one palette (256 colours chosen over the
  whole clip), so colours do not flicker from frame to frame.
* PNG strip (``-o x.png`` or ``--strip``): one row of T frames per clip, provenance in a tEXt chunk.
* ``{t}`` in the path: one PNG per frame (of the tiled grid, or of each clip with ``{i}`` too), each with its
  provenance plus the frame (and clip) index.

Torch-free: the sample path imports this before any model work.
"""

from __future__ import annotations

import io
import json
from typing import Any

from gencli.plugin import Clips

GIF_SUFFIX, PNG_SUFFIX = ".gif", ".png"
PAD, PAD_VALUE = 2, 128  # the grid's gutter, as for images


def checked_frames(clips: Clips) -> Any:
    """The frames as a numpy array, refused unless uint8 (N, T, H, W, 1|3) with a positive frame rate."""
    import numpy as np

    frames = np.asarray(clips.frames)
    if frames.ndim != 5 or frames.dtype != np.uint8 or frames.shape[-1] not in (1, 3) or 0 in frames.shape:
        raise ValueError(f"Clips.frames must be uint8 (N, T, H, W, 1|3), got {frames.dtype} {frames.shape}")
    if not clips.fps > 0:
        raise ValueError(f"Clips.fps must be positive, got {clips.fps}")
    return frames


def scaled_clips(clips: Clips, scale: int) -> Clips:
    """Each pixel a ``scale`` x ``scale`` block (nearest neighbour), for viewing tiny clips."""
    frames = checked_frames(clips)
    return Clips(frames.repeat(scale, axis=2).repeat(scale, axis=3), clips.fps, clips.columns)  # (N, T, H*K, W*K, C)


def split_clips(clips: Clips) -> list[Clips]:
    """One Clips per clip, for '{i}' paths."""
    frames = checked_frames(clips)
    return [Clips(frames[i : i + 1], clips.fps) for i in range(len(frames))]


def tiled_frames(clips: Clips) -> Any:
    """(N, T, H, W, C) -> (T, H', W', C): at each time step the N clips' frames laid out as an image grid."""
    import numpy as np

    from gencli.writers import grid

    frames = checked_frames(clips)
    return np.stack([grid(frames[:, t], clips.columns, PAD, PAD_VALUE) for t in range(frames.shape[1])])


def strip(clips: Clips) -> Any:
    """(N, T, H, W, C) -> one image: row i holds clip i's T frames from left to right."""
    from gencli.writers import grid

    frames = checked_frames(clips)
    n, t = frames.shape[:2]
    if n * t == 1:
        return frames[0, 0]
    return grid(frames.reshape(n * t, *frames.shape[2:]), t, PAD, PAD_VALUE)  # (rows, cols, C)


def frame_milliseconds(fps: float) -> int:
    """How long each frame shows: GIF counts in hundredths of a second, so round to 10 ms (at least 20 ms: many
    viewers play a shorter delay far slower than asked)."""
    return max(20, int(100.0 / fps + 0.5) * 10)  # half up: 8 fps shows 130 ms, not 120


def gif_bytes(clips: Clips, provenance: dict[str, Any]) -> bytes:
    """An animated GIF of the tiled clips, looping forever, with the provenance as its comment."""
    from PIL import Image

    movie = tiled_frames(clips)  # (T, H', W', C)
    t, h, w, c = movie.shape
    if c == 1:
        pictures = [Image.fromarray(frame[..., 0], mode="L") for frame in movie]
    else:
        # One palette for the whole movie: quantise all frames stacked as one tall image, then cut it up.
        tall = Image.fromarray(movie.reshape(t * h, w, c)).quantize(256, method=Image.Quantize.MEDIANCUT,
                                                                    dither=Image.Dither.NONE)
        pictures = [tall.crop((0, i * h, w, (i + 1) * h)) for i in range(t)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], loop=0,
                     duration=frame_milliseconds(clips.fps), comment=json.dumps(provenance, sort_keys=True))
    return buffer.getvalue()


def encode_clips(clips: Clips, suffix: str, provenance: dict[str, Any]) -> bytes:
    """``.gif``: the animated grid; ``.png``: the strip of frames."""
    from gencli.writers import png_bytes

    if suffix == PNG_SUFFIX:
        return png_bytes(strip(clips), {**provenance, "fps": clips.fps})
    return gif_bytes(clips, provenance)


def frame_files(clips: Clips, template: str, provenance: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(path, PNG bytes) for every frame of a '{t}' path: of the tiled grid, or of each clip when '{i}' is there
    too. Frame and clip numbers start at 0; the provenance names them."""
    from gencli.writers import png_bytes

    per_clip = split_clips(clips) if "{i}" in template else [clips]
    files = []
    for i, one in enumerate(per_clip):
        movie = tiled_frames(one)  # (T, H', W', C)
        for t, frame in enumerate(movie):
            path = template.replace("{i}", str(i)).replace("{t}", str(t))
            where = {"frame": t, "fps": clips.fps} | ({"index": i} if "{i}" in template else {})
            files.append((path, png_bytes(frame, {**provenance, **where})))
    return files
