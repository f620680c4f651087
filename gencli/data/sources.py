"""Turn a --data SRC into local files: paths as they are, ``hf:org/name/path`` from a Hub dataset repo."""

from __future__ import annotations

from pathlib import Path

from gencli.errors import GencliError, UsageError

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
    parts = spec.split("/")
    if len(parts) < 3:
        raise UsageError(f"--data hf:{spec}: use hf:org/name/path/to/file inside a Hub dataset repo")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    repo_id, _, revision = repo_id.partition("@")
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, repo_type="dataset",
                                                    revision=revision or None))
    except (hub_errors.HfHubHTTPError, hub_errors.LocalEntryNotFoundError, OSError) as error:
        raise GencliError(f"--data hf:{spec}: {str(error).splitlines()[0]}") from None
