"""A user's paired folder, in either layout of the official pix2pix tool:

* ``DIR/A/`` and ``DIR/B/`` holding the two sides under the same file names (``A/0001.png`` pairs with
  ``B/0001.png``; sub-folders allowed, matched by their relative path);
* side-by-side images, each file the input A on the left half and the target B on the right (the tool's
  ``combine_A_and_B`` output, e.g. its facades and maps sets).

Either layout may be split as the tool's data sets are (``train/``, ``val/``, ``test/`` below DIR, or below
A/ and B/): then training reads ``train/`` and evaluation ``test/`` (else ``val/``). Without such folders a
fixed 10% of the pairs is held out for evaluation. Each side is resized to the model's square size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gencli.data.images import IMAGE_SUFFIXES, open_image, to_array
from gencli.data.sources import local_path
from gencli.errors import UsageError
from gencli_pix2pix.pairs import Pairs

HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 0


def image_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def split_folder(folder: Path, split: str) -> Path | None:
    """The tool's own split sub-folder for ``split`` ("train" or "test"), if the data set has one."""
    names = ("train",) if split == "train" else ("test", "val")
    return next((folder / name for name in names if (folder / name).is_dir()), None)


def read(path: Path, source: str, root: Path) -> Any:
    """A loaded PIL image, or one clear error line naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as image:
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"--data {source}: {shown(path, root)} is not a readable image ({error})") from None


def shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else path.name


def has_colour(images: list[Any]) -> bool:
    for image in images:
        if image.mode not in ("L", "1", "LA", "I", "I;16", "F"):
            rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
            if np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() > 2:
                return True
    return False


def stack(images: list[Any], size: int, channels: int) -> torch.Tensor:
    """PIL images -> uint8 (N, channels, size, size)."""
    arrays = np.stack([to_array(image, size, channels) for image in images])  # (N, size, size, C)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()


def ab_folders_pairs(source: str, root: Path, a_dir: Path, b_dir: Path) -> tuple[list[Any], list[Any], list[str]]:
    """(A images, B images, names) of the A/ and B/ layout; a file without its partner is one error line."""
    a_files = {p.relative_to(a_dir).as_posix(): p for p in image_files(a_dir)}
    b_files = {p.relative_to(b_dir).as_posix(): p for p in image_files(b_dir)}
    for side, mine, theirs, other in (("A", a_files, b_files, "B"), ("B", b_files, a_files, "A")):
        lonely = sorted(set(mine) - set(theirs))
        if lonely:
            more = f" (and {len(lonely) - 1} more)" if len(lonely) > 1 else ""
            raise UsageError(f"--data {source}: {shown(a_dir if side == 'A' else b_dir, root)}/{lonely[0]} has no "
                             f"partner {shown(b_dir if side == 'A' else a_dir, root)}/{lonely[0]}{more}; pairs need "
                             f"the same file name in {side}/ and {other}/")
    names = sorted(a_files)
    return ([read(a_files[n], source, root) for n in names], [read(b_files[n], source, root) for n in names], names)


def side_by_side_pairs(source: str, root: Path, folder: Path) -> tuple[list[Any], list[Any], list[str]]:
    """(A halves, B halves, names) of side-by-side A|B images; an odd width is one error line."""
    a_images, b_images, names = [], [], []
    for path in image_files(folder):
        image = read(path, source, root)
        width, height = image.size
        if width % 2:
            raise UsageError(f"--data {source}: {shown(path, root)} is {width} pixels wide; a side-by-side A|B "
                             "image needs an even width (A the left half, B the right), or use A/ and B/ folders")
        half = width // 2
        a_images.append(image.crop((0, 0, half, height)))
        b_images.append(image.crop((half, 0, width, height)))
        names.append(shown(path, root))
    return a_images, b_images, names


def load_pairs(source: str, root: Path, folder: Path | None, size: int, channels: tuple[int, int] | None,
               ab_layout: bool) -> Pairs:
    """Every pair below ``folder`` (for the A/B layout: the relative sub-folder of A/ and B/)."""
    if ab_layout:
        sub = folder.relative_to(root / "A") if folder is not None else Path()
        a_images, b_images, names = ab_folders_pairs(source, root, root / "A" / sub, root / "B" / sub)
        layout = "A/ and B/ folders"
    else:
        a_images, b_images, names = side_by_side_pairs(source, root, folder or root)
        layout = "side-by-side A|B images"
    if not names:
        raise UsageError(f"--data {source}: no PNG or JPEG images there")
    a_channels, b_channels = channels or (3 if has_colour(a_images) else 1, 3 if has_colour(b_images) else 1)
    labels = torch.full((len(names),), -1, dtype=torch.int64)
    return Pairs(stack(a_images, size, a_channels), stack(b_images, size, b_channels), labels,
                 f"{source} ({len(names):,} pairs, {layout}, at {size}x{size})")


def folder_pairs(source: str, split: str, size: int, channels: tuple[int, int] | None = None) -> Pairs:
    """The training pairs (``split`` "train") or the held-out ones ("test") of a folder in either layout.

    ``channels`` (A, B) forces grayscale (1) or RGB (3) per side, e.g. the trained model's; None picks RGB for
    a side where any image has colour."""
    root = local_path(source)
    ab_layout = root.is_dir() and (root / "A").is_dir() and (root / "B").is_dir()
    if root.is_dir() and not ab_layout and ((root / "A").is_dir() or (root / "B").is_dir()):
        present, missing = ("A", "B") if (root / "A").is_dir() else ("B", "A")
        raise UsageError(f"--data {source}: has {present}/ but no {missing}/ folder; the A/B layout needs both")
    base = root / "A" if ab_layout else root
    train_folder, test_folder = split_folder(base, "train"), split_folder(base, "test")
    if train_folder is not None:  # the tool's own split
        folder = train_folder if split == "train" else test_folder
        if folder is None:
            raise UsageError(f"--data {source}: has train/ but no test/ or val/ folder to evaluate on")
        return load_pairs(source, root, folder, size, channels, ab_layout)
    pairs = load_pairs(source, root, None, size, channels, ab_layout)
    if len(pairs) < 2:
        raise UsageError(f"--data {source}: need at least 2 pairs to hold one out for evaluation")
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    held = max(1, round(len(pairs) * HOLDOUT_FRACTION))
    if split == "train":
        return pairs.take(order[held:].sort().values, "training part")
    return pairs.take(order[:held].sort().values, f"held-out {held} pair(s)")
