"""IDX files, the format MNIST and its relatives ship in (LeCun et al.), plain or gzip'd.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in row-major order. Image files are (N, rows, cols) uint8, label
files (N,) uint8. A folder holds the four files under their usual names, as LeCun's site, torchvision's
``MNIST/raw`` and Debian's ``/usr/share/datasets/fashion-mnist`` lay them out; the names with a dot
(``train-images.idx3-ubyte``), as some archives unpack them, work too.

numpy only: `gencli data list` runs this without torch.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gencli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

UBYTE = 0x08  # the only value type these data sets use
# (split, kind) -> the stem of the file; each may end in .gz
STEMS = {("train", "images"): "train-images", ("train", "labels"): "train-labels",
         ("test", "images"): "t10k-images", ("test", "labels"): "t10k-labels"}
DIMENSIONS = {"images": 3, "labels": 1}
MAX_VALUES = 1 << 31  # a header may claim any size: refuse what no image data set needs before reading it


@dataclass
class IdxSplit:
    """One split: ``images`` uint8 (N, rows, cols), ``labels`` uint8 (N,)."""

    images: np.ndarray
    labels: np.ndarray


def decode(raw: bytes, name: str, dimensions: int) -> np.ndarray:
    """The array in one IDX file's bytes; anything malformed is a UsageError naming ``name``."""
    import numpy as np

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UsageError(f"{name}: not an IDX file (it does not start with two zero bytes)")
    if raw[2] != UBYTE:
        raise UsageError(f"{name}: IDX value type 0x{raw[2]:02x}, but only unsigned bytes (0x08) are supported")
    if raw[3] != dimensions:
        raise UsageError(f"{name}: an IDX file of {raw[3]} dimension(s), expected {dimensions}")
    header = 4 + 4 * dimensions
    if len(raw) < header:
        raise UsageError(f"{name}: the IDX header is cut short")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dimensions))
    count = int(np.prod(shape, dtype=np.int64))
    if count > MAX_VALUES:
        raise UsageError(f"{name}: the IDX header claims {count:,} values, more than any image data set holds")
    if len(raw) != header + count:
        raise UsageError(f"{name}: the IDX header promises {count:,} values of shape {shape} but the file holds "
                         f"{len(raw) - header:,} (truncated or not IDX)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read(path: Path, dimensions: int) -> np.ndarray:
    """One IDX file (gzip'd when its name ends in .gz)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read(MAX_VALUES + 64)
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise UsageError(f"{path}: cannot read it ({error})") from None
    return decode(raw, str(path), dimensions)


def find(folder: Path, split: str, kind: str) -> Path | None:
    """The file for (split, kind) in ``folder``: plain before gzip'd, dash before dot spelling."""
    stem = STEMS[(split, kind)]
    ubyte = f"idx{DIMENSIONS[kind]}-ubyte"
    for name in (f"{stem}-{ubyte}", f"{stem}.{ubyte}", f"{stem}-{ubyte}.gz", f"{stem}.{ubyte}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def data_folder(path: Path) -> Path | None:
    """``path`` or its ``raw/`` sub-folder (torchvision's layout) when it holds the training images, else None."""
    if not path.is_dir():
        return None
    for folder in (path, path / "raw"):
        if find(folder, "train", "images") is not None:
            return folder
    return None


def load_split(folder: Path, split: str) -> IdxSplit:
    """The images and labels of ``split`` (train or test) in an IDX folder, checked to match in count."""
    paths = {kind: find(folder, split, kind) for kind in ("images", "labels")}
    missing = [f"{STEMS[(split, kind)]}-idx{DIMENSIONS[kind]}-ubyte[.gz]" for kind, p in paths.items() if p is None]
    if missing:
        raise UsageError(f"{folder}: an IDX data folder needs {' and '.join(missing)}")
    images = read(paths["images"], 3)  # type: ignore[arg-type]
    labels = read(paths["labels"], 1)  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise UsageError(f"{folder}: {len(images):,} {split} images but {len(labels):,} labels")
    return IdxSplit(images, labels)


def encode(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (what the tests write, and a user's own data can be saved as)."""
    import numpy as np

    header = bytes([0, 0, UBYTE, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
