"""Turn a --data SRC into local files: paths as they are, ``hf:org/name/path`` from a Hub dataset repo."""

from __future__ import annotations

from pathlib import Path

from gencli.errors import UsageError

HUB_PREFIX = "hf:"


def local_path(source: str) -> Path:
    """A local file or folder for ``source``; Hub dataset files are fetched into the normal HF cache."""
    if source.startswith(HUB_PREFIX):
        return _hub_file(source[len(HUB_PREFIX):])
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"--data {source}: no such file or folder")
    if not (path.is_file() or path.is_dir()):
        # A named pipe blocks until a writer comes, /dev/zero never ends: data is a file or a folder of them.
        raise UsageError(f"--data {source}: not a regular file or folder (a pipe or device?); save the data to "
                         "a file first")
    return path


def _hub_file(spec: str) -> Path:
    """hf:org/name[@revision]/path/to/file, through gencli's own Hub client (gencli/hub.py): bounded waits,
    verified files, and no path taken from the server unchecked."""
    parts = spec.split("/")
    if len(parts) < 3:
        raise UsageError(f"--data hf:{spec}: use hf:org/name/path/to/file inside a Hub dataset repo")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    repo_id, _, revision = repo_id.partition("@")
    from gencli import hub

    try:
        return hub.download_dataset_file(repo_id, filename, revision or None)
    except UsageError as error:  # name the option; runtime errors already name hf:... themselves
        raise UsageError(f"--data hf:{spec}: {error}") from None
