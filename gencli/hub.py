"""The Hugging Face Hub: download a model repo into the normal HF cache, and push a run folder.

All Hub traffic goes through huggingface_hub, which honours HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE
(read when it is first imported). Only the files a gencli model needs are fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

from gencli.errors import GencliError, UsageError

MODEL_FILES = ("config.json", "model.safetensors")
OPTIONAL_FILES = ("README.md",)
# org/name, each part as the Hub allows it, optionally @revision
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# training_state/ (optimizer, RNG) is for resuming here, not for users of the model.
PUSH_IGNORE = ["training_state/*", "*.tmp", "*.partial", ".*"]


def looks_like_repo_id(source: str) -> bool:
    return bool(REPO_ID.match(source))


def split_repo_id(source: str) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); 'org/name' -> ('org/name', None)."""
    if not looks_like_repo_id(source):
        raise UsageError(f"{source!r} is not a Hub repo id (org/name[@revision])")
    repo, _, revision = source.partition("@")
    return repo, revision or None


class RepoNotFound(GencliError):
    """The Hub has no such repo (or it is private and we are not logged in)."""


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a failed Hub call raises: HfHubHTTPError and OSError, and httpx2's own errors (not OSErrors)."""
    from huggingface_hub import errors as hub_errors

    found: list[type[BaseException]] = [hub_errors.HfHubHTTPError, OSError]
    try:
        import httpx2

        found.append(httpx2.HTTPError)
    except ImportError:
        pass
    return tuple(found)


def _quiet_progress(quiet: bool) -> None:
    """No download bars when asked for quiet or when stderr is not a terminal (no animation in logs)."""
    import sys

    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars

    interactive = getattr(sys.stderr, "isatty", lambda: False)()
    if (quiet or not interactive) and constants.HF_HUB_DISABLE_PROGRESS_BARS is None:  # the env var wins
        disable_progress_bars()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def download_repo(repo_id: str, revision: str | None, *, quiet: bool = False) -> tuple[Path, str]:
    """Fetch the model files of ``repo_id`` at ``revision``; returns (snapshot folder, commit hash).

    The first file pins the commit and the others are fetched at that commit, so a branch that moves
    mid-download cannot mix files of two commits. A short commit hash is refused: the Hub resolves only
    full 40-hex hashes, and a pinned revision should be unambiguous anyway. An interrupted download is
    resumed by huggingface_hub (in the same call, or from the .incomplete file on the next one).
    """
    if revision and re.fullmatch(r"[0-9a-f]{7,39}", revision):
        raise UsageError(f"revision {revision!r} looks like a short commit hash; give all 40 hex digits")
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub import errors as hub_errors

    _quiet_progress(quiet)
    paths: dict[str, Path] = {}
    pinned = revision
    try:
        for filename in MODEL_FILES + OPTIONAL_FILES:
            try:
                paths[filename] = Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=pinned))
            except hub_errors.RemoteEntryNotFoundError:
                if filename in MODEL_FILES:
                    raise GencliError(f"Hub repo {repo_id} has no {filename}"
                                      f"{f' at revision {revision}' if revision else ''}; is it a gencli model?"
                                      ) from None
            except hub_errors.LocalEntryNotFoundError:
                if filename in MODEL_FILES:
                    raise
            if filename == MODEL_FILES[0]:
                folder = paths[filename].parent
                if COMMIT.match(folder.name):  # the cache lays files out as snapshots/<commit>/<file>
                    pinned = folder.name
    except hub_errors.RepositoryNotFoundError:
        raise RepoNotFound(f"Hub repo {repo_id} not found (or private: log in with `hf auth login`)") from None
    except hub_errors.RevisionNotFoundError:
        raise GencliError(f"Hub repo {repo_id} has no revision {revision!r}") from None
    except hub_errors.LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise GencliError(f"{repo_id}{f'@{revision}' if revision else ''} is not in the local Hub cache and "
                              f"HF_HUB_OFFLINE is set; run `gencli download {repo_id}` while online") from None
        raise GencliError(f"{repo_id} is not in the local Hub cache and the Hub ({constants.ENDPOINT}) cannot be "
                          "reached; check the network, or run `gencli download` while online") from None
    except _network_errors() as error:
        raise GencliError(f"download of {repo_id} failed: {_first_line(error)}") from None
    folder = paths[MODEL_FILES[0]].parent
    commit = pinned if pinned and COMMIT.match(pinned) else (revision or "main")
    return folder, commit


def check_run_folder(run_dir: Path) -> None:
    """Refuse to push what could not be loaded back: no model card, no config, not safetensors."""
    import json

    from gencli.weights import read_header

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    for filename in MODEL_FILES:
        if not (run_dir / filename).is_file():
            raise UsageError(f"{run_dir} is not a finished run folder ({filename} missing)")
    if not (run_dir / "README.md").is_file():
        raise UsageError(f"{run_dir} has no model card (README.md); finish or resume the run first")
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GencliError(f"{run_dir / 'config.json'}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or "gencli_plugin" not in config:
        raise GencliError(f"{run_dir / 'config.json'}: not a gencli config (no gencli_plugin key)")
    read_header(run_dir / "model.safetensors")  # a pickle or a truncated file never reaches the Hub


def push_run(run_dir: Path, repo_id: str, *, private: bool, revision: str | None, quiet: bool = False) -> str:
    """Upload a run folder as a Hub model repo (everything but training_state/ and temporary files)."""
    run_dir = Path(run_dir)
    check_run_folder(run_dir)
    repo, at_revision = split_repo_id(repo_id)
    if at_revision and revision and at_revision != revision:
        raise UsageError(f"two revisions given: {repo_id!r} and --revision {revision}")
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    _quiet_progress(quiet)
    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo, folder_path=str(run_dir), revision=revision or at_revision,
                                 ignore_patterns=PUSH_IGNORE, commit_message=f"gencli push {run_dir.name}")
    except hub_errors.RevisionNotFoundError:
        raise GencliError(f"Hub repo {repo} has no branch {revision or at_revision!r} to push to") from None
    except _network_errors() as error:
        raise GencliError(f"push to {repo} failed: {_first_line(error)}") from None
    return str(getattr(info, "commit_url", None) or info)
