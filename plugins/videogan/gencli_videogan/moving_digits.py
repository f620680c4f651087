""""Moving digits over textures": the embedded training clips, made on the fly and offline.

Each clip pastes one or two embedded MNIST digits (gencli's mnist-5k, scaled to half the frame side) onto a
static crop of a texture photograph that scikit-image ships in its wheel (brick, grass, gravel), tinted with
a random colour. Every digit moves with a constant velocity and bounces off the frame's borders (the
velocity component that would take it out is reversed, the overshoot reflected). So a clip has exactly the
two parts the two-stream generator models: a background that never changes and a foreground that moves.
Plain black-background Moving MNIST would leave the background stream nothing to learn.

Digits come from the mnist-5k train split for training and from its test split for the held-out clips that
evaluation scores against; the labels travel with the clips (the class of the first digit).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

TEXTURES = ("brick", "grass", "gravel")  # scikit-image's bundled texture photos (512 x 512 grayscale)
TEXTURE_ZOOM = 0.25  # textures are shrunk 4x first, so a 32-pixel crop still shows their pattern
SPEED = (1.0, 2.5)  # pixels a frame at 32 x 32, scaled with the frame side
BACKGROUND_RANGE = (0.15, 0.7)  # textures are mapped into this intensity range, so white digits stand out


@dataclass
class ClipBatch:
    """``frames``: uint8 (B, T, S, S, 3); ``labels``: (B,) class of the first digit; ``positions``: float
    (B, T, D, 2) top-left (y, x) of each digit; ``background``: uint8 (B, S, S, 3), the static texture crop."""

    frames: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    background: np.ndarray


@functools.cache
def textures(size: int) -> tuple[np.ndarray, ...]:
    """The bundled texture photos, shrunk for a ``size``-pixel frame, as float32 in BACKGROUND_RANGE."""
    import skimage.data
    from PIL import Image

    scaled = []
    for name in TEXTURES:
        picture = Image.fromarray(getattr(skimage.data, name)())
        side = max(2 * size, int(picture.width * TEXTURE_ZOOM * size / 32))
        array = np.asarray(picture.resize((side, side), Image.Resampling.LANCZOS), np.float32) / 255.0
        low, high = BACKGROUND_RANGE
        scaled.append(low + (high - low) * array)
    return tuple(scaled)


@functools.cache
def digit_sprites(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sprites float32 (N, size/2, size/2) in [0, 1], labels (N,)) from the embedded mnist-5k ``split``."""
    from PIL import Image

    from gencli.data.images import mnist

    images = mnist(split)  # type: ignore[arg-type]
    side = size // 2
    sprites = np.stack([np.asarray(Image.fromarray(p[0].numpy()).resize((side, side), Image.Resampling.LANCZOS),
                                   np.float32) / 255.0 for p in images.pixels])
    return sprites, images.labels.numpy()


def bounce(start: np.ndarray, velocity: np.ndarray, frames: int, limit: float) -> np.ndarray:
    """Positions (frames, 2) of a point moving at ``velocity`` inside [0, limit] per axis, reflected at walls."""
    # Unfold the reflections: walk freely, then fold the line onto [0, limit] (a triangle wave of period 2L).
    free = start[None, :] + velocity[None, :] * np.arange(frames, dtype=np.float64)[:, None]  # (T, 2)
    if limit <= 0:
        return np.zeros_like(free)
    folded = np.mod(free, 2 * limit)
    return np.where(folded > limit, 2 * limit - folded, folded)


def make_clips(rng: np.random.Generator, count: int, *, frames: int = 16, size: int = 32, digits: int = 1,
               split: str = "train") -> ClipBatch:
    """``count`` clips of ``frames`` frames of ``size`` x ``size`` RGB, each with ``digits`` moving digits."""
    sprites, sprite_labels = digit_sprites(split, size)
    pictures = textures(size)
    side = sprites.shape[1]
    limit = size - side  # a digit's top-left corner stays in [0, limit], so the whole digit stays inside
    video = np.empty((count, frames, size, size, 3), np.float32)
    backgrounds = np.empty((count, size, size, 3), np.float32)
    positions = np.empty((count, frames, digits, 2), np.float64)
    labels = np.empty(count, np.int64)
    for i in range(count):
        picture = pictures[rng.integers(len(pictures))]
        y, x = rng.integers(0, picture.shape[0] - size + 1, size=2)
        tint = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
        background = picture[y : y + size, x : x + size, None] * tint  # (S, S, 3)
        backgrounds[i] = background
        video[i] = background
        for d in range(digits):
            k = rng.integers(len(sprites))
            if d == 0:
                labels[i] = sprite_labels[k]
            angle = rng.uniform(0, 2 * np.pi)
            speed = rng.uniform(*SPEED) * size / 32
            path = bounce(rng.uniform(0, limit, size=2), speed * np.array([np.sin(angle), np.cos(angle)]), frames,
                          limit)
            positions[i, :, d] = path
            alpha = sprites[k][..., None]  # (s, s, 1): the digit's ink is its own opacity
            for t, (py, px) in enumerate(np.rint(path).astype(int)):
                patch = video[i, t, py : py + side, px : px + side]
                patch[...] = alpha * 1.0 + (1 - alpha) * patch  # white ink over whatever is beneath
    to_uint8 = lambda a: np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)  # noqa: E731
    return ClipBatch(to_uint8(video), labels, positions, to_uint8(backgrounds))


def describe(frames: int, size: int, digits: int) -> str:
    return (f"moving-digits (embedded: {digits} mnist-5k digit(s) bouncing over scikit-image textures, "
            f"{frames} frames of {size}x{size}, made on the fly)")


def rng_from(generator: Any) -> np.random.Generator:
    """A numpy generator drawn from a torch generator, so a batch depends on the engine's generator only."""
    import torch

    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
