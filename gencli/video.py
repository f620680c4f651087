"""``Clips`` (short videos, uint8 (N, T, H, W, C)) as arrays, and their animated GIF encoding.

gencli.writers lays clips out (the N clips tiled into one grid per time step, or a PNG strip with one row of
T frames per clip, or one PNG per frame) with its image grid and PNG encoder; this module checks, scales and
splits the frames and encodes a movie as a GIF: played at the clips' frame rate, looped forever, the
provenance JSON as the GIF comment, and one palette for all frames (256 colours chosen over the whole movie),
so colours do not flicker from frame to frame.

Torch-free: the sample path imports this before any model work.
"""

from __future__ import annotations

import io
import json
from typing import Any

from gencli.plugin import Clips

GIF_SUFFIX, PNG_SUFFIX = ".gif", ".png"


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


def frame_milliseconds(fps: float) -> int:
    """How long each frame shows: GIF counts in hundredths of a second, so round to 10 ms (at least 20 ms: many
    viewers play a shorter delay far slower than asked)."""
    return max(20, int(100.0 / fps + 0.5) * 10)  # half up: 8 fps shows 130 ms, not 120


def gif_bytes(movie: Any, fps: float, provenance: dict[str, Any]) -> bytes:
    """An animated GIF of ``movie``, uint8 (T, H, W, C), looping forever, with the provenance as its comment."""
    from PIL import Image

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
                     duration=frame_milliseconds(fps), comment=json.dumps(provenance, sort_keys=True))
    return buffer.getvalue()
