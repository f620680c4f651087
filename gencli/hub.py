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
PUSH_IGNORE = ["training_state/*", "*.tmp", "*.partial", ".*"]


def looks_like_repo_id(source: str) -> bool:
    return bool(REPO_ID.match(source))


def split_repo_id(source: str) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); 'org/name' -> ('org/name', None)."""
    if not looks_like_repo_id(source):
        raise UsageError(f"{source!r} is not a Hub repo id (org/name[@revision])")
    repo, _, revision = source.partition("@")
    return repo, revision or None


def download_repo(repo_id: str, revision: str | None) -> tuple[Path, str]:
    """Fetch the model files of ``repo_id`` at ``revision``; returns (snapshot folder, commit hash).

    A short commit hash is refused: the Hub resolves only full 40-hex hashes, and a pinned revision should
    be unambiguous anyway.
    """
    if revision and re.fullmatch(r"[0-9a-f]{7,39}", revision):
        raise UsageError(f"revision {revision!r} looks like a short commit hash; give all 40 hex digits")
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    paths: dict[str, Path] = {}
    try:
        for filename in MODEL_FILES + OPTIONAL_FILES:
            try:
                paths[filename] = Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision))
            except hub_errors.EntryNotFoundError:
                if filename in MODEL_FILES:
                    raise GencliError(f"Hub repo {repo_id} has no {filename}; is it a gencli model?") from None
            except hub_errors.LocalEntryNotFoundError:
                if filename in MODEL_FILES:
                    raise
    except hub_errors.RepositoryNotFoundError:
        raise GencliError(f"Hub repo {repo_id} not found (or private: log in with `hf auth login`)") from None
    except hub_errors.RevisionNotFoundError:
        raise GencliError(f"Hub repo {repo_id} has no revision {revision!r}") from None
    except hub_errors.LocalEntryNotFoundError:
        raise GencliError(
            f"{repo_id} is not in the local cache and the Hub cannot be reached (offline?); "
            "run `gencli download` while online") from None
    except (hub_errors.HfHubHTTPError, OSError) as error:
        raise GencliError(f"download of {repo_id} failed: {str(error).splitlines()[0]}") from None
    folder = paths["config.json"].parent
    # The cache lays files out as snapshots/<commit>/<file>: the folder name is the pinned commit.
    commit = folder.name if COMMIT.match(folder.name) else (revision or "main")
    return folder, commit


def push_run(run_dir: Path, repo_id: str, *, private: bool, revision: str | None) -> str:
    run_dir = Path(run_dir)
    for filename in MODEL_FILES:
        if not (run_dir / filename).is_file():
            raise UsageError(f"{run_dir} is not a finished run folder ({filename} missing)")
    if not (run_dir / "README.md").is_file():
        raise UsageError(f"{run_dir} has no model card (README.md); finish or resume the run first")
    repo, at_revision = split_repo_id(repo_id)
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo, folder_path=str(run_dir), revision=revision or at_revision,
                                 ignore_patterns=PUSH_IGNORE, commit_message=f"gencli push {run_dir.name}")
    except (hub_errors.HfHubHTTPError, OSError) as error:
        raise GencliError(f"push to {repo} failed: {str(error).splitlines()[0]}") from None
    return str(getattr(info, "commit_url", None) or info)
