"""Training and evaluation photos, and the low-resolution inputs made from them by bicubic downscaling.

The embedded default is made offline from the photos that ship inside two installed wheels: scikit-image's
``skimage.data`` (only the images in the wheel, none that pooch would fetch) and scikit-learn's
``load_sample_images``. Three are held out for evaluation. A folder of the user's own photos works too: a fixed
tenth of it (at least one photo) is held out.

As in the paper, a low-resolution image is the high-resolution one downscaled by bicubic interpolation
(Pillow's, with antialiasing, like MATLAB's imresize); both are cropped first to a multiple of the scale.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gencli.errors import UsageError

EMBEDDED = "photos"
# Colour photos and greyscale textures from scikit-image's wheel, and scikit-learn's two sample photos.
# (retina and hubble_deep_field are left out: mostly black, they would take a third of the crops.)
TRAINING_PHOTOS = ("astronaut", "rocket", "immunohistochemistry", "stereo_motorcycle", "camera", "brick", "grass",
                   "gravel", "moon", "coins", "sklearn:china")
HELD_OUT_PHOTOS = ("chelsea", "coffee", "sklearn:flower")  # a cat's fur, a cup on a saucer, a flower
HOLDOUT_FRACTION = 0.1  # of a user's folder


@dataclass
class Photo:
    name: str
    pixels: np.ndarray  # uint8 (H, W, 3)


def embedded_photo(name: str) -> Photo:
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        pixels = load_sample_image(name.removeprefix("sklearn:") + ".jpg")
    else:
        import skimage.data

        pixels = getattr(skimage.data, name)()
        if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity); the left photo
            pixels = pixels[0]
    pixels = np.asarray(pixels, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)  # a greyscale texture, as RGB
    return Photo(name.removeprefix("sklearn:"), np.ascontiguousarray(pixels[:, :, :3]))


def folder_photos(source: str) -> list[Photo]:
    from PIL import ImageOps

    from gencli.data.images import IMAGE_SUFFIXES, open_image
    from gencli.data.sources import local_path
    from gencli.messages import warn

    root = local_path(source)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    photos, skipped = [], []
    for file in files:
        try:
            with open_image(file) as image:
                photos.append(Photo(file.name, np.array(ImageOps.exif_transpose(image).convert("RGB"))))
        except (OSError, ValueError):
            skipped.append(file.name)
    if skipped:
        warn(f"skipped {len(skipped)} unreadable or oversized image file(s) in {source} (e.g. {skipped[0]})")
    if not photos:
        raise UsageError(f"--data {source}: no readable PNG or JPEG photos there")
    return photos


@functools.cache
def photos(source: str | None, split: str) -> tuple[Photo, ...]:
    """``train`` or ``test`` photos for --data as typed (None or "photos": the embedded set)."""
    if source in (None, EMBEDDED):
        return tuple(embedded_photo(name) for name in (TRAINING_PHOTOS if split == "train" else HELD_OUT_PHOTOS))
    everything = folder_photos(source)
    if len(everything) < 2:
        raise UsageError(f"--data {source}: need at least 2 photos, to hold one out for evaluation")
    order = np.random.default_rng(0).permutation(len(everything))
    held = max(1, round(len(everything) * HOLDOUT_FRACTION))
    chosen = sorted(order[held:]) if split == "train" else sorted(order[:held])
    return tuple(everything[i] for i in chosen)


def describe(source: str | None, split: str) -> str:
    chosen = photos(source, split)
    names = ", ".join(p.name for p in chosen[:6]) + (", ..." if len(chosen) > 6 else "")
    origin = ("embedded: scikit-image's and scikit-learn's sample photos" if source in (None, EMBEDDED)
              else source)
    return f"{origin}, {split} split: {len(chosen)} photos ({names})"


# ---- bicubic resizing --------------------------------------------------------------------------------------


def crop_to_multiple(pixels: np.ndarray, scale: int) -> np.ndarray:
    h, w = pixels.shape[0] // scale * scale, pixels.shape[1] // scale * scale
    return pixels[:h, :w]


def bicubic(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, C) -> uint8 (h, w, C) = ``size``, Pillow's bicubic (antialiased when shrinking)."""
    from PIL import Image

    channels = [Image.fromarray(np.ascontiguousarray(pixels[:, :, c])) for c in range(pixels.shape[2])]
    resized = [np.asarray(ch.resize((size[1], size[0]), Image.Resampling.BICUBIC)) for ch in channels]
    return np.stack(resized, axis=2)


def downscale(pixels: np.ndarray, scale: int) -> np.ndarray:
    """The low-resolution input for a high-resolution image whose sides are multiples of ``scale``."""
    return bicubic(pixels, (pixels.shape[0] // scale, pixels.shape[1] // scale))


# ---- training batches -----------------------------------------------------------------------------------------


class CropBatches:
    """The engine's TrainData: {"low": float (B, 3, c/s, c/s), "high": float (B, 3, c, c)} in [0, 1], random
    crops of c = ``crop`` pixels (the paper: 96) at positions aligned to the scale, randomly flipped and turned.

    Each photo is downscaled once, whole: an aligned crop of it is the downscaled crop, up to the few pixels by
    the crop's edge that bicubic's reach takes from outside it."""

    def __init__(self, chosen: tuple[Photo, ...], scale: int, crop: int) -> None:
        if crop % scale:
            raise UsageError(f"--crop {crop} must be a multiple of --scale {scale}")
        self.scale, self.crop = scale, crop
        self.high = [torch.from_numpy(crop_to_multiple(p.pixels, scale).copy()).permute(2, 0, 1) for p in chosen]
        self.low = [torch.from_numpy(downscale(crop_to_multiple(p.pixels, scale), scale)).permute(2, 0, 1)
                    for p in chosen]
        small = [p.name for p, image in zip(chosen, self.high) if min(image.shape[1:]) < crop]
        if small:
            raise UsageError(f"photo {small[0]} is smaller than --crop {crop}")
        # Photos are drawn in proportion to their area, so every region of the data is equally likely.
        self.weights = torch.tensor([float(image.shape[1] * image.shape[2]) for image in self.high])

    def batch(self, generator: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        s, lc = self.scale, self.crop // self.scale
        picks = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        lows, highs = [], []
        for index in picks.tolist():
            low, high = self.low[index], self.high[index]
            y = int(torch.randint(0, low.shape[1] - lc + 1, (1,), generator=generator))
            x = int(torch.randint(0, low.shape[2] - lc + 1, (1,), generator=generator))
            lows.append(low[:, y:y + lc, x:x + lc])  # (3, c/s, c/s)
            highs.append(high[:, y * s:(y + lc) * s, x * s:(x + lc) * s])  # (3, c, c)
        low_batch, high_batch = torch.stack(lows).float() / 255, torch.stack(highs).float() / 255
        flips = torch.randint(0, 2, (2,), generator=generator).tolist()
        turns = int(torch.randint(0, 4, (1,), generator=generator))
        for dims, flip in zip(((3,), (2,)), flips):
            if flip:
                low_batch, high_batch = low_batch.flip(dims), high_batch.flip(dims)
        low_batch, high_batch = low_batch.rot90(turns, (2, 3)), high_batch.rot90(turns, (2, 3))
        return {"low": low_batch.contiguous(), "high": high_batch.contiguous()}
