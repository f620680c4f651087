"""The two embedded paired data sets, made offline from data that installed packages ship.

* ``edges2digits``: the embedded MNIST digits (gencli.data.images: 4,000 train / 500 valid / 500 test),
  padded from 28 to 32 pixels (the U-Net halves the side five times), as targets; their inputs are edge maps
  by scikit-image's Canny detector (sigma 1), white edges on black. Labels are kept, so the evaluation can ask
  the shared digit classifier whether an output still shows the source digit.
* ``grey2colour``: colour photos that scikit-image's wheel and scikit-learn carry (never the ones scikit-image
  downloads on demand), downscaled so their short side is 256 pixels; a training pair is a random square crop
  (random position and mirroring, drawn from the engine's generator) with its luminance as the input. Two whole
  photos (coffee, and scikit-learn's flower) are held out; evaluation uses their non-overlapping tiles.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from gencli.errors import UsageError
from gencli_pix2pix.pairs import Pairs, luminance

EDGES2DIGITS = "edges2digits"
GREY2COLOUR = "grey2colour"
EMBEDDED = (EDGES2DIGITS, GREY2COLOUR)
DIGIT_PAD = 2  # 28 + 2 * 2 = 32
CANNY_SIGMA = 1.0  # thinner edges than the default would trace every stroke twice less cleanly; 1 reads well
PHOTO_SHORT_SIDE = 256
TRAIN_PHOTOS = ("astronaut", "chelsea", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry",
                "china")
HELD_OUT_PHOTOS = ("coffee", "flower")


@functools.cache
def edges2digits(split: str) -> Pairs:
    """uint8 pairs (N, 1, 32, 32): Canny edges of a split of the embedded digits -> the digits."""
    from skimage.feature import canny

    from gencli.data.images import mnist

    digits = mnist(split)  # type: ignore[arg-type]
    padded = torch.nn.functional.pad(digits.pixels, (DIGIT_PAD,) * 4)  # (N, 1, 32, 32)
    edges = np.stack([canny(image[0].numpy() / 255.0, sigma=CANNY_SIGMA) for image in padded])  # (N, 32, 32)
    a = torch.from_numpy(edges.astype(np.uint8) * 255).unsqueeze(1)  # (N, 1, 32, 32)
    return Pairs(a, padded, digits.labels,
                 f"{EDGES2DIGITS} {split} split ({len(a):,} pairs: Canny edges of the embedded MNIST digits -> "
                 "the digits, 32x32)")


def unpad_digits(images: torch.Tensor) -> torch.Tensor:
    """(N, C, 32, 32) -> the (N, C, 28, 28) middle the digit classifier was trained on."""
    return images[..., DIGIT_PAD:-DIGIT_PAD, DIGIT_PAD:-DIGIT_PAD]


def photo(name: str) -> np.ndarray:
    """One bundled RGB photo as uint8 (H, W, 3)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


@functools.cache
def photos(names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """The photos as uint8 (3, H, W), each downscaled (Lanczos) to a short side of PHOTO_SHORT_SIDE."""
    from PIL import Image

    result = []
    for name in names:
        try:
            image = Image.fromarray(photo(name)).convert("RGB")
        except (ImportError, OSError, ValueError) as error:
            raise UsageError(f"--data {GREY2COLOUR}: the bundled photo {name!r} cannot be read ({error}); "
                             "reinstall scikit-image and scikit-learn") from None
        scale = PHOTO_SHORT_SIDE / min(image.size)
        size = (round(image.size[0] * scale), round(image.size[1] * scale))
        resized = np.array(image.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)  # (H, W, 3)
        result.append(torch.from_numpy(resized).permute(2, 0, 1).contiguous())
    return tuple(result)


class PhotoCrops:
    """Training batches of grey2colour: {"a": grey (B, 1, s, s), "b": colour (B, 3, s, s)} as uint8, random crops
    of random training photos, each mirrored with probability 1/2 when ``mirror``; the sides swap for BtoA."""

    def __init__(self, size: int, direction: str, mirror: bool = True) -> None:
        self.photos, self.size, self.direction, self.mirror = photos(TRAIN_PHOTOS), size, direction, mirror
        if size > PHOTO_SHORT_SIDE:
            raise UsageError(f"--image-size {size}: {GREY2COLOUR} crops at most {PHOTO_SHORT_SIDE} pixels")

    def batch(self, generator: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        which = torch.randint(0, len(self.photos), (batch_size,), generator=generator)
        corners = torch.rand(batch_size, 2, generator=generator)  # where in each photo, as fractions
        mirrored = (torch.rand(batch_size, generator=generator) < 0.5) & self.mirror  # drawn either way
        crops = []
        for i, index in enumerate(which.tolist()):
            image = self.photos[index]
            top = int(corners[i, 0] * (image.shape[1] - self.size + 1))
            left = int(corners[i, 1] * (image.shape[2] - self.size + 1))
            crop = image[:, top:top + self.size, left:left + self.size]  # (3, s, s)
            crops.append(crop.flip(-1) if mirrored[i] else crop)
        colour = torch.stack(crops)  # (B, 3, s, s)
        a, b = luminance(colour), colour
        return {"a": a, "b": b} if self.direction == "AtoB" else {"a": b, "b": a}


@functools.cache
def grey2colour_held_out(size: int) -> Pairs:
    """The held-out photos' non-overlapping size x size tiles: grey (N, 1, s, s) -> colour (N, 3, s, s)."""
    tiles = []
    for image in photos(HELD_OUT_PHOTOS):
        _, height, width = image.shape
        for top in range(0, height - size + 1, size):
            for left in range(0, width - size + 1, size):
                tiles.append(image[:, top:top + size, left:left + size])
    colour = torch.stack(tiles)  # (N, 3, s, s)
    return Pairs(luminance(colour), colour, torch.full((len(tiles),), -1, dtype=torch.int64),
                 f"{GREY2COLOUR} held-out tiles ({len(tiles)} {size}x{size} tiles of the photos "
                 f"{' and '.join(HELD_OUT_PHOTOS)})")


def resized(pairs: Pairs, size: int) -> Pairs:
    """Both sides resized (Lanczos) to size x size, for a model trained at another size."""
    if pairs.a.shape[-1] == size and pairs.a.shape[-2] == size:
        return pairs
    from PIL import Image

    from gencli.data.images import to_array

    def side(images: torch.Tensor) -> torch.Tensor:
        channels = images.shape[1]
        arrays = [to_array(Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy()), size, channels)
                  for image in images]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    return Pairs(side(pairs.a), side(pairs.b), pairs.labels, f"{pairs.description}, resized to {size}x{size}")
