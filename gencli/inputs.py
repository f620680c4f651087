"""``--input PATH|DIR|-``: the images a conditional image plugin works on, and where each one's output goes.

The rules a plugin and a user can rely on are in :class:`gencli.plugin.ImageInput`. In short: every input is
found and checked (readable, small enough) before the model loads, outputs are mapped to inputs (``-o out/``,
``{stem}``) and checked against each other and against the inputs, and then each image is decoded only when
its turn comes, so a folder of large photos holds one image in memory at a time.

Torch-free: Pillow, numpy and hashlib only.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gencli.data.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, open_image
from gencli.errors import UsageError
from gencli.files import file_digest
from gencli.plugin import ImageInput, InputImage
from gencli.writers import check_destination, default_path

STDIN = "-"
STDIN_STEM = "stdin"
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG: what stdin may carry
MAX_STDIN_BYTES = 512 * 2**20  # a compressed image larger than this is not a photo; stop reading a runaway pipe
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass(frozen=True)
class InputSource:
    """One input before decoding: a file (``path``) or stdin's bytes (``data``)."""

    name: str  # as messages and provenance show it: the file's name, or "-"
    stem: str  # what {stem} becomes
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> Any:
        return self.path if self.path is not None else io.BytesIO(self.data or b"")

    def sha256(self) -> str:
        if self.path is not None:
            return file_digest(self.path, hashlib.sha256())
        return hashlib.sha256(self.data or b"").hexdigest()


@dataclass(frozen=True)
class Job:
    """One input and the destination its output goes to (a path, or '-' for stdout)."""

    source: InputSource
    destination: str


# ---- finding and checking inputs -------------------------------------------------------------------------


def find_inputs(spec: str, declared: ImageInput, stdin: IO[bytes] | None = None) -> tuple[list[InputSource], bool]:
    """The inputs ``--input spec`` names, each checked; and whether ``spec`` is a folder (many outputs)."""
    if spec == STDIN:
        source = read_stdin(stdin)
        check_readable(source, declared)
        return [source], False
    if not spec.strip():
        raise UsageError("--input needs a file, a folder or '-' for stdin")
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise UsageError(f"--input {spec}: no PNG or JPEG images in that folder")
        sources = [InputSource(file.name, file.stem, path=file) for file in files]
    elif path.is_file():
        sources = [InputSource(path.name, path.stem, path=path)]
    elif os.path.lexists(path):
        raise UsageError(f"--input {spec}: not a regular file or folder")
    else:
        raise UsageError(f"--input {spec}: no such file or folder")
    for source in sources:
        check_readable(source, declared)
    return sources, path.is_dir()


def read_stdin(stdin: IO[bytes] | None = None) -> InputSource:
    """stdin's bytes (one PNG or JPEG), refusing a terminal, an empty pipe or anything else."""
    stream = stdin if stdin is not None else sys.stdin
    if stream is None or _is_terminal(stream):
        raise UsageError("--input -: stdin is a terminal; pipe a PNG or JPEG in (gencli ... --input - < photo.png)")
    binary = getattr(stream, "buffer", stream)
    data = binary.read(MAX_STDIN_BYTES + 1)
    if not data:
        raise UsageError("--input -: stdin is empty; pipe a PNG or JPEG in")
    if len(data) > MAX_STDIN_BYTES:
        raise UsageError(f"--input -: more than {MAX_STDIN_BYTES // 2**20} MiB on stdin; that is not one image")
    if not data.startswith(SIGNATURES):
        raise UsageError("--input -: stdin does not hold a PNG or JPEG image")
    return InputSource(STDIN, STDIN_STEM, data=data)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def check_readable(source: InputSource, declared: ImageInput) -> None:
    """Open the header and verify the file's structure (no pixels decoded): one error line if it is bad."""
    with _opened(source, declared) as image:
        image.verify()  # PNG: every chunk's checksum; catches a truncated or corrupt file before any work


class _opened:
    """``with _opened(source, declared) as image``: Pillow's lazy image, every failure one UsageError."""

    def __init__(self, source: InputSource, declared: ImageInput) -> None:
        self.source, self.limit = source, declared.max_pixels or MAX_IMAGE_PIXELS
        self.image: Any = None

    def __enter__(self) -> Any:
        try:
            self.image = open_image(self.source.open(), self.limit)
        except FileNotFoundError:
            raise UsageError(f"--input {self.source.name}: no such image file") from None
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - any decoder failure is a bad file, said in one line
            raise bad_image(self.source, error) from None
        return self.image

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.image.close()
        if isinstance(error, Exception) and not isinstance(error, (UsageError, MemoryError)):
            raise bad_image(self.source, error) from None


def bad_image(source: InputSource, error: BaseException) -> UsageError:
    from PIL import UnidentifiedImageError

    reason = "not an image Pillow can read" if isinstance(error, UnidentifiedImageError) else str(error)
    reason = " ".join(reason.split()) or type(error).__name__
    return UsageError(f"--input {source.name}: not a readable image ({reason})")


# ---- decoding ------------------------------------------------------------------------------------------------


def decode(source: InputSource, declared: ImageInput) -> InputImage:
    """The image as the plugin gets it: upright, 8-bit, ``declared.channels`` channels, alpha apart."""
    from PIL import ImageOps

    with _opened(source, declared) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)  # a camera's portrait photo stands up
        pixels, alpha = channels_of(upright, declared.channels)
    return InputImage(pixels, alpha, source.name, source.stem, source.sha256())


def channels_of(image: Any, channels: int | None) -> tuple[Any, Any]:
    """(uint8 (H, W, C), alpha uint8 (H, W) or None) of a Pillow image in any mode."""
    import numpy as np
    from PIL import Image

    if image.mode in ("P", "PA") or "transparency" in image.info:  # palette or a transparent colour key
        image = image.convert("RGBA" if image.mode not in GREY_MODES else "LA")
    alpha = None
    if "A" in image.getbands():
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8)
        if alpha.min() == 255:
            alpha = None  # an alpha channel that is opaque everywhere keeps nothing worth carrying
    grey = image.mode in GREY_MODES
    wanted = channels or (1 if grey else 3)
    if image.mode.startswith("I") or image.mode == "F":
        # Pillow's own conversion to "L" clips 16-bit values at 255 (a mostly white image): scale instead.
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8), mode="L")
    converted = image.convert("L" if wanted == 1 else "RGB")
    pixels = np.array(converted, dtype=np.uint8)
    return (pixels[:, :, None] if wanted == 1 else pixels), alpha


# ---- where outputs go ------------------------------------------------------------------------------------------


def plan(sources: list[InputSource], folder: bool, output: str | None, *, plugin: str, n: int,
         stdout: IO[Any] | None = None) -> list[Job]:
    """Each input's destination by the rules of ImageInput, checked before any model work."""
    many = folder or len(sources) > 1
    if output is None:
        if many:
            raise UsageError("--input names a folder: say where the outputs go, -o OUT/ or -o 'OUT/{stem}.png'")
        stdout = stdout if stdout is not None else sys.stdout
        destination = STDIN if not _is_terminal(stdout) else default_path(f"{sources[0].stem}-{plugin}", ".png")
        return [Job(sources[0], destination)]
    if output == STDIN:
        if many:
            raise UsageError("-o -: a folder of inputs makes one image each; give -o OUT/ or -o 'OUT/{stem}.png'")
        return [Job(sources[0], STDIN)]
    if as_folder(output):
        folder_path = Path(output)
        if not folder_path.is_dir():
            if not folder_path.parent.is_dir():
                raise UsageError(f"-o {output}: folder {folder_path.parent} does not exist")
        jobs = [Job(source, str(folder_path / f"{source.stem}.png")) for source in sources]
    elif "{stem}" in output:
        jobs = [Job(source, output.replace("{stem}", source.stem)) for source in sources]
    elif many:
        raise UsageError(f"-o {output}: a folder of inputs makes one image each; give -o OUT/ or put {{stem}} "
                         "in the name")
    else:
        jobs = [Job(sources[0], output)]
    check_jobs(jobs, n, made=Path(output) if as_folder(output) else None)
    if as_folder(output):
        Path(output).mkdir(exist_ok=True)  # only now: every check has passed
    return jobs


def as_folder(output: str) -> bool:
    """``-o out/`` (a trailing slash) or an existing folder: one ``<stem>.png`` per input inside it."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def check_jobs(jobs: list[Job], n: int, made: Path | None = None) -> None:
    """No two inputs to one output, no output over an input, every destination writable as a PNG (``made``:
    the -o folder that is created once these checks pass)."""
    inputs = {_identity(job.source.path): job.source.name for job in jobs if job.source.path is not None}
    claimed: dict[str, str] = {}
    for job in jobs:
        names = ([job.destination.replace("{i}", str(i)) for i in range(n)] if "{i}" in job.destination
                 else [job.destination])
        for name in names:
            if made is None or Path(name).parent != made:
                check_destination("image", name)
            if name == STDIN:
                continue
            key = _identity(Path(name))
            if key in inputs:
                raise UsageError(f"-o {name}: that is the input {inputs[key]}; refusing to overwrite an input")
            if key in claimed:
                raise UsageError(f"-o {name}: inputs {claimed[key]} and {job.source.name} would both be written "
                                 "there; use {stem} or -o OUT/ with distinct names")
            claimed[key] = job.source.name


def _identity(path: Path | None) -> str:
    return os.path.realpath(path) if path is not None else ""


def provenance_of(image: InputImage) -> dict[str, str]:
    """What an output's provenance records about its input."""
    return {"name": image.name, "sha256": image.sha256}
