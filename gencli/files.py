"""Writing files without losing anybody's data: atomic replacement, and what an output path may replace.

The rule for an output path (``-o PATH``), the same for every format:

* a new name is created; an existing regular file is replaced, keeping its permissions (as ``cp`` and
  shell redirection do), but a read-only file is refused;
* either way the data is written beside it first and renamed into place, so an interrupted command leaves
  the old file or the new one, never half a file, and the temporary file never takes a name of the user's;
* a symlink is followed: the file it points to is replaced and the link stays (a dangling link is refused);
* a named pipe or a character device (``/dev/null``, a terminal) is written as a stream, never renamed over;
* a folder, a socket or a block device is refused.

Torch-free: the sample path imports this before any model work.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gencli.errors import UsageError


@dataclass(frozen=True)
class Target:
    """Where an output goes: ``path`` to replace atomically, or (``stream``) a pipe or device to write into."""

    path: Path
    stream: bool = False


def output_target(path: Path, flag: str = "-o") -> Target:
    """Classify ``path`` by the rule above, refusing what must not be written; nothing is created here."""
    try:
        info = os.stat(path)  # follows symlinks: the kind of the file that would receive the data
    except FileNotFoundError:
        if os.path.islink(path):
            raise UsageError(f"{flag} {path}: a symlink to {os.readlink(path)}, which does not exist") from None
        return Target(Path(path))
    except OSError as error:
        raise UsageError(f"{flag} {path}: {error.strerror or error}") from None
    mode = info.st_mode
    if stat.S_ISREG(mode):
        if not mode & 0o222:
            raise UsageError(f"{flag} {path}: the file is read-only; remove it or choose another name")
        return Target(Path(os.path.realpath(path)))
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return Target(Path(path), stream=True)
    if stat.S_ISDIR(mode):
        raise UsageError(f"{flag} {path}: is a folder; give a file name")
    raise UsageError(f"{flag} {path}: not a regular file, pipe or character device; refusing to write there")


def is_terminal_device(path: Path) -> bool:
    """Whether ``path`` is a character device that is a terminal (binary output never goes to one)."""
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


@contextmanager
def open_target(target: Target) -> Iterator[BinaryIO]:
    """A binary file to write ``target``'s content into; it reaches the target only if the block succeeds."""
    if target.stream:
        with open(target.path, "wb") as stream:
            yield stream
        return
    with replacing(target.path) as f:
        yield f


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """Write a new version of ``path``: a crash leaves either the old file or the new one, never a mix.

    The data goes to a uniquely named hidden file in the same folder (``mkstemp``: it can never be a file of
    the user's), which is flushed to disk and renamed over ``path`` when the block ends without an error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`replacing`)."""
    with replacing(path) as f:
        f.write(data)


def file_digest(path: Path, digest: Any) -> str:
    """Feed ``path`` to a hashlib object (read in 1 MiB blocks, never whole) and return its hex digest."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _new_file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777  # replacing a file keeps its permissions
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
