"""``--data DIR``: a user's videos, as folders of frames and as GIF files, cut into clips.

A video is a GIF file, or a folder holding its frames as PNG/JPEG files. DIR may be one video (a GIF, or a
folder of frames) or hold several (GIF files and sub-folders of frames). Frames are ordered by the number at
the end of their names (``frame_007.png``) when every name has one, else by name; a gap in that numbering is
refused, as is a frame whose size differs from the first one's: either means the folder is not one video.
Frames become RGB, are resized to the model's square side, and each video is cut into consecutive clips of
``--frames`` frames (a remainder shorter than that is dropped).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from gencli.data.images import IMAGE_SUFFIXES, open_image, to_array
from gencli.errors import UsageError

NUMBERED = re.compile(r"(\d+)$")
MAX_FRAMES = 100_000  # frames read from one --data source; more is not a data set this plugin trains on here


def videos_in(root: Path) -> list[Path]:
    """The GIF files and frame folders that make up ``root``."""
    if root.is_file():
        return [root]
    videos = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".gif")
    if any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir()):
        videos.append(root)  # frames directly in DIR: DIR is a video itself
    videos += sorted(p for p in root.iterdir() if p.is_dir() and any(
        f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir() if f.is_file()))
    return videos


def ordered_frames(folder: Path, source: str) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    numbers = [NUMBERED.search(p.stem) for p in files]
    if not all(numbers):
        return sorted(files)
    by_number = sorted(zip((int(m.group(1)) for m in numbers if m), files))
    for (before, _), (after, path) in zip(by_number, by_number[1:]):
        if after != before + 1:
            missing = "a repeated number" if after == before else f"frame {before + 1} is missing"
            raise UsageError(f"--data {source}: {folder.name}/ skips from frame {before} to {after} "
                             f"({missing} before {path.name})")
    return [path for _, path in by_number]


def read_frames(video: Path, source: str, size: int) -> list[np.ndarray]:
    """Every frame of one video as uint8 (size, size, 3)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    frames: list[np.ndarray] = []
    try:
        if video.is_file():
            with open_image(video) as gif:
                for frame in ImageSequence.Iterator(gif):
                    frames.append(to_array(frame.convert("RGB"), size, 3))
                    if len(frames) > MAX_FRAMES:
                        break
            return frames
        first_size: Any = None
        for path in ordered_frames(video, source):
            with open_image(path) as image:
                if first_size is None:
                    first_size, first_name = image.size, path.name
                elif image.size != first_size:
                    raise UsageError(f"--data {source}: {video.name}/{path.name} is {image.size[0]}x{image.size[1]}, "
                                     f"but {first_name} is {first_size[0]}x{first_size[1]}; a video's frames "
                                     "share one size")
                frames.append(to_array(image, size, 3))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"--data {source}: cannot read {video.name}: {error}") from None
    return frames


def load_clips(source: str, size: int, frames: int) -> np.ndarray:
    """All clips of ``frames`` frames in ``source``: uint8 (N, frames, size, size, 3)."""
    from gencli.data.sources import local_path

    root = local_path(source)
    videos = videos_in(root)
    if not videos:
        raise UsageError(f"--data {source}: no videos there (GIF files, or folders of PNG/JPEG frames)")
    clips, total = [], 0
    for video in videos:
        pictures = read_frames(video, source, size)
        total += len(pictures)
        if total > MAX_FRAMES:
            raise UsageError(f"--data {source}: more than {MAX_FRAMES:,} frames; use a smaller set of videos")
        name = video.name if video != root else str(root)
        if len(pictures) < frames:
            raise UsageError(f"--data {source}: {name} has {len(pictures)} frame(s), fewer than --frames {frames}")
        stacked = np.stack(pictures)  # (F, S, S, 3)
        whole = len(pictures) // frames * frames
        clips.append(stacked[:whole].reshape(-1, frames, size, size, 3))
    return np.concatenate(clips)
