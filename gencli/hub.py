"""The Hugging Face Hub: download a model repo (or one file of a dataset repo) into the normal HF cache, and
push a run folder.

Downloads use gencli's own small client on huggingface_hub's HTTP session rather than ``hf_hub_download``,
because that function names cache files after the ETag and X-Repo-Commit headers as the server sends them
(an ETag of ``../../x`` writes outside the cache), verifies nothing, and retries with backoff for tens of
seconds. Here every header that becomes a path is checked before anything is written, every file is
verified against the Hub's hash, and one deadline and one stall timeout bound the whole download. The cache
layout is huggingface_hub's own (``blobs/<etag>``, ``snapshots/<commit>/<file>`` linking to the blob,
``refs/<branch>``), so offline runs and the ``hf`` tools read what gencli writes. Pushing uses ``HfApi``.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is first imported.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import GencliError, UsageError
from gencli.files import atomic_write, file_digest

MODEL_FILES = ("config.json", "model.safetensors")
OPTIONAL_FILES = ("README.md",)
# The shape of org/name[@revision]; split_repo_id then applies the Hub's own rules to each part.
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# A Hub name (huggingface_hub's validate_repo_id): 1-96 of [A-Za-z0-9_.-], beginning and ending with a word
# character, no "--" or "..".
HUB_NAME = re.compile(r"^\w(?:[\w.-]{0,94}\w)?$", re.ASCII)
# What the Hub sends as a file's ETag: a git blob id (40 hex) or, for LFS files, the content's sha256 (64 hex).
ETAG = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# training_state/ (optimizer, RNG) is for resuming here, not for users of the model.
PUSH_IGNORE = ["training_state/*", "*.tmp", "*.partial", ".*"]

DEADLINE_ENV, STALL_ENV = "GENCLI_DOWNLOAD_TIMEOUT", "GENCLI_DOWNLOAD_STALL_TIMEOUT"
# Generous for the sizes gencli's models have (a few to a few hundred MB); a stalled socket fails much sooner.
DEFAULT_DEADLINE, DEFAULT_STALL = 600.0, 30.0
_DROPS = 3  # a connection that breaks off is resumed this many times per file, within the deadline


def looks_like_repo_id(source: str) -> bool:
    return bool(REPO_ID.match(source))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def split_repo_id(source: str) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); 'org/name' -> ('org/name', None). Invalid ids are usage errors."""
    if not looks_like_repo_id(source):
        raise UsageError(f"{_shown(source)} is not a Hub repo id (org/name[@revision])")
    repo, _, revision = source.partition("@")
    check_repo_id(repo)
    if revision:
        check_revision(revision)
    return repo, revision or None


def check_repo_id(repo: str) -> None:
    for part in repo.split("/"):
        if len(part) > 96:
            raise UsageError(f"{_shown(repo)} is not a valid Hub repo id: a name has at most 96 characters, "
                             f"this one {len(part)}")
        if not HUB_NAME.match(part) or "--" in part or ".." in part or part.endswith(".git"):
            raise UsageError(f"{_shown(repo)} is not a valid Hub repo id: org and name are letters, digits, '-', "
                             "'_' and '.', begin and end with a letter or digit, and have no '--' or '..'")


def check_revision(revision: str) -> None:
    """A revision becomes a path under refs/ in the cache: no empty, '.' or '..' parts, nothing unprintable."""
    parts = revision.split("/")
    if (len(revision) > 255 or any(part in ("", ".", "..") for part in parts)
            or not revision.isprintable() or "\\" in revision):
        raise UsageError(f"{_shown(revision)} is not a valid revision (a branch, tag or 40-hex commit)")


class RepoNotFound(GencliError):
    """The Hub has no such repo (or it is private and we are not logged in)."""


class _Unreachable(GencliError):
    """The Hub could not answer (no connection, no answer in time, a server error, not a Hub at all):
    a cached copy may stand in."""


class _Missing(GencliError):
    """The repo has no such file at this revision."""


# ---- limits ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    deadline: float  # seconds for the whole download
    stall: float  # seconds without a byte (or an answer) before giving up


def download_limits() -> Limits:
    """The limits from GENCLI_DOWNLOAD_TIMEOUT and GENCLI_DOWNLOAD_STALL_TIMEOUT (seconds)."""
    return Limits(_seconds(DEADLINE_ENV, DEFAULT_DEADLINE), _seconds(STALL_ENV, DEFAULT_STALL))


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name}={raw}: give a number of seconds greater than 0")
    return value


class _Clock:
    """One deadline for a whole download; each network wait gets the stall timeout or what is left."""

    def __init__(self, limits: Limits, label: str) -> None:
        self.limits, self.label = limits, label
        self.end = time.monotonic() + limits.deadline

    def left(self) -> float:
        return self.end - time.monotonic()

    def timeout(self) -> float:
        left = self.left()
        if left <= 0:
            raise self.deadline_error()
        return min(self.limits.stall, left)

    def deadline_hit(self) -> bool:
        # httpx waits at least the timeout it was given, so a timeout that was cut to the deadline ends past it.
        return self.left() <= 0.01

    def deadline_error(self) -> GencliError:
        return GencliError(f"download of {self.label} did not finish within {self.limits.deadline:g} s "
                           f"(overall deadline, {DEADLINE_ENV}); the network or the Hub is too slow")

    def stall_text(self) -> str:
        return f"for {self.limits.stall:g} s (stall timeout, {STALL_ENV})"


# ---- the Hub's answers ----------------------------------------------------------------------------------


@dataclass
class _Meta:
    url: str  # where to GET the file (a CDN when the Hub redirects there)
    same_origin: bool  # whether that URL may see the Authorization header
    commit: str
    etag: str
    size: int | None


@dataclass
class _Request:
    repo: str
    repo_type: str  # "model" or "dataset"
    label: str  # repo[@revision] as the user gave it
    endpoint: str
    headers: dict[str, str]
    clock: _Clock
    session: Any


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _is_html(response: Any) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def _kind(repo_type: str) -> str:
    """How messages name a repo: "Hub repo org/name" for a model, "Hub dataset repo org/name" for a dataset."""
    return "Hub repo" if repo_type == "model" else f"Hub {repo_type} repo"


def _answer_error(req: _Request, filename: str, revision: str, response: Any) -> GencliError:
    """An HTTP error status as one line naming what happened. The Hub's own answers carry X-Error-Code."""
    status, code = response.status_code, response.headers.get("X-Error-Code")
    said = f"HTTP {status} {response.reason_phrase}".strip()
    if code == "RepoNotFound" or status == 401:
        return RepoNotFound(f"{_kind(req.repo_type)} {req.repo} not found (or private: log in with `hf auth login`)")
    if code == "GatedRepo":
        return GencliError(f"{_kind(req.repo_type)} {req.repo} is gated: accept its conditions on the Hub, then log in with "
                           "`hf auth login`")
    if code == "RevisionNotFound":
        return GencliError(f"{_kind(req.repo_type)} {req.repo} has no revision {revision!r}")
    if code == "DisabledRepo":
        return GencliError(f"{_kind(req.repo_type)} {req.repo} has been disabled on the Hub")
    if code == "EntryNotFound":
        return _Missing(filename)
    if status == 403:
        return GencliError(f"the Hub ({req.endpoint}) refused access to {req.repo} ({said}); check your token")
    if status >= 500 or status in (408, 429):
        return _Unreachable(f"the Hub ({req.endpoint}) answered {said} for {filename}; try again later")
    if _is_html(response):
        return _Unreachable(f"{req.endpoint} answered {said} with an HTML page for {filename} (a proxy or login "
                            "page?); check HF_ENDPOINT and the network")
    if status == 404:
        return _Unreachable(f"{req.endpoint} answered {said} for {filename} without the Hub's error headers; is "
                            "HF_ENDPOINT a Hugging Face Hub?")
    return _Unreachable(f"{req.endpoint} answered {said} for {filename}")


def _head(req: _Request, filename: str, revision: str) -> _Meta:
    """The file's commit, ETag, size and download URL, each header checked before it can name a path."""
    from urllib.parse import urljoin, urlsplit

    import httpx2
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(req.repo, filename, repo_type=req.repo_type, revision=revision, endpoint=req.endpoint)
    origin = urlsplit(url)[:2]
    for attempt in (1, 2):  # one retry of a server error, if the deadline allows
        timeout = req.clock.timeout()
        try:
            response = req.session.request("HEAD", url, headers=req.headers, timeout=timeout, follow_redirects=False)
            for _ in range(5):  # a renamed repo redirects within the Hub; an LFS file to a CDN (not followed)
                if not response.has_redirect_location:
                    break
                target = urljoin(str(response.url), response.headers["Location"])
                if urlsplit(target)[:2] != origin:
                    break
                response = req.session.request("HEAD", target, headers=req.headers, timeout=req.clock.timeout(),
                                               follow_redirects=False)
        except httpx2.TimeoutException:
            if req.clock.deadline_hit():
                raise req.clock.deadline_error() from None
            raise _Unreachable(f"the Hub ({req.endpoint}) sent no answer about {filename} "
                               f"{req.clock.stall_text()}") from None
        except httpx2.ConnectError as error:
            raise _Unreachable(f"cannot connect to the Hub at {req.endpoint} ({_first_line(error)})") from None
        except httpx2.HTTPError as error:
            raise _Unreachable(f"the Hub ({req.endpoint}) could not be asked about {filename} "
                               f"({_first_line(error)})") from None
        redirected = response.has_redirect_location
        if response.status_code < 300 or redirected:
            break
        error = _answer_error(req, filename, revision, response)
        if isinstance(error, _Unreachable) and response.status_code >= 500 and attempt == 1 and req.clock.left() > 2:
            time.sleep(1.0)
            continue
        raise error
    return _metadata(req, filename, revision, response, url)


def _metadata(req: _Request, filename: str, revision: str, response: Any, url: str) -> _Meta:
    from urllib.parse import urljoin, urlsplit

    headers = response.headers
    commit = headers.get("X-Repo-Commit")
    if commit is None:
        if _is_html(response):
            raise _Unreachable(f"{req.endpoint} answered with an HTML page for {filename}, not the file (a proxy "
                               "or login page?); check HF_ENDPOINT and the network")
        raise _Unreachable(f"{req.endpoint} is not a Hugging Face Hub: its answer for {filename} has no "
                           "X-Repo-Commit header; check HF_ENDPOINT")
    if not COMMIT.match(commit):
        raise GencliError(f"the Hub ({req.endpoint}) sent an invalid commit id {_shown(commit)} (X-Repo-Commit) "
                          f"for {filename} of {req.repo}; refusing it")
    if COMMIT.match(revision) and commit != revision:
        raise GencliError(f"the Hub ({req.endpoint}) answered commit {commit} for {filename} of {req.repo} "
                          f"when asked for commit {revision}; refusing it")
    which = "X-Linked-Etag" if headers.get("X-Linked-Etag") else "ETag"
    raw = headers.get(which)
    etag = raw.removeprefix("W/").strip('"') if raw else None
    if etag is None or not ETAG.match(etag):
        raise GencliError(f"the Hub ({req.endpoint}) sent {filename} of {req.repo} under an invalid {which} "
                          f"{_shown(raw or '')}; refusing to use it as a file name")
    size_header = headers.get("X-Linked-Size") or (None if response.has_redirect_location
                                                   else headers.get("Content-Length"))
    size = int(size_header) if size_header and size_header.isdigit() else None
    location = str(response.url)  # after any redirect within the Hub
    if response.has_redirect_location:  # to a CDN: fetch from there
        location = urljoin(location, headers["Location"])
    same_origin = urlsplit(location)[:2] == urlsplit(url)[:2]
    return _Meta(location, same_origin, commit, etag, size)


# ---- verification --------------------------------------------------------------------------------------


def etag_digest(path: Path, etag: str) -> str:
    """The digest of ``path`` of the kind ``etag`` is: sha256 (64 hex), or a git blob id (40 hex)."""
    if len(etag) == 64:
        return file_digest(path, hashlib.sha256())
    # git's object id of a blob: sha1 over "blob <length>\0" and the content
    return file_digest(path, hashlib.sha1(b"blob %d\0" % path.stat().st_size))


def _digest_kind(etag: str) -> str:
    return "sha256" if len(etag) == 64 else "git blob id"


def _cache_problem(storage: Path, path: Path) -> tuple[str, str] | None:
    """Why a cached snapshot file cannot be used: ("outside", ...) or ("corrupt", ...); None when it can."""
    real = path.resolve()
    if not real.is_relative_to(storage.resolve()):
        return "outside", f"{path} resolves to {real}, outside the Hub cache ({storage})"
    # A blob is named after the Hub's hash of it, so a cached file is checked without asking the Hub.
    if path.is_symlink() and real.parent.name == "blobs" and ETAG.match(real.name):
        got = etag_digest(real, real.name)
        if got != real.name:
            return "corrupt", (f"{path}: the cached file is corrupt (its {_digest_kind(real.name)} is {got}, "
                               f"the Hub's is {real.name})")
    return None


def _check_snapshot(storage: Path, folder: Path, repair: str,
                    files: tuple[str, ...] = MODEL_FILES + OPTIONAL_FILES) -> None:
    """Refuse a cached snapshot with a file outside the cache or a file that fails its hash."""
    for filename in files:
        path = folder / filename
        if os.path.lexists(path):
            problem = _cache_problem(storage, path)
            if problem is not None:
                raise GencliError(f"{problem[1]}; repair it with `{repair}`")


# ---- the cache -----------------------------------------------------------------------------------------


def _storage(repo: str, repo_type: str = "model") -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo.replace('/', '--')}"


def _cached_snapshot(storage: Path, revision: str, files: tuple[str, ...] = MODEL_FILES) -> Path | None:
    """The cached snapshot folder of ``revision`` when it holds every one of ``files``, else None."""
    commit: str | None = revision
    if not COMMIT.match(revision):
        try:
            commit = (storage / "refs" / revision).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
    if not commit or not COMMIT.match(commit):
        return None
    folder = storage / "snapshots" / commit
    if all(os.path.lexists(folder / filename) for filename in files):
        return folder
    return None


def _link(blob: Path, pointer: Path) -> None:
    """snapshots/<commit>/<file> -> ../../blobs/<etag>, as huggingface_hub lays it out (a copy without symlinks),
    made beside the pointer and renamed into place, so a reader never sees half of it."""
    import shutil

    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.tmp")
    try:
        if os.path.lexists(tmp):
            tmp.unlink()
        try:
            tmp.symlink_to(os.path.relpath(blob, pointer.parent))
        except OSError:
            shutil.copyfile(blob, tmp)
        os.replace(tmp, pointer)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


# ---- download --------------------------------------------------------------------------------------------


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _quiet_progress(quiet: bool) -> None:
    """No download bars when asked for quiet or when stderr is not a terminal (no animation in logs)."""
    import sys

    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars

    interactive = getattr(sys.stderr, "isatty", lambda: False)()
    if (quiet or not interactive) and constants.HF_HUB_DISABLE_PROGRESS_BARS is None:  # the env var wins
        disable_progress_bars()


def download_repo(repo_id: str, revision: str | None, *, quiet: bool = False,
                  force: bool = False) -> tuple[Path, str]:
    """Fetch the model files of ``repo_id`` at ``revision``; returns (snapshot folder, commit hash).

    The first file pins the commit and the others are fetched at that commit, so a branch that moves
    mid-download cannot mix files of two commits. A short commit hash is refused: the Hub resolves only
    full 40-hex hashes, and a pinned revision should be unambiguous anyway. Cached files are verified
    against their hash and fetched again when bad; ``force`` fetches every file again. When the Hub cannot
    answer, a complete cached snapshot of the revision stands in.
    """
    check_repo_id(repo_id)
    if revision:
        check_revision(revision)
    if revision and re.fullmatch(r"[0-9a-f]{7,39}", revision):
        raise UsageError(f"revision {revision!r} looks like a short commit hash; give all 40 hex digits")
    limits = download_limits()
    label = f"{repo_id}@{revision}" if revision else repo_id
    repair = f"gencli download {label} --force"
    storage = _storage(repo_id)
    if _offline():
        folder = _cached_snapshot(storage, revision or "main")
        if folder is None:
            raise GencliError(f"{label} is not in the local Hub cache and HF_HUB_OFFLINE is set; run "
                              f"`gencli download {repo_id}` while online")
        _check_snapshot(storage, folder, repair)
        return folder, folder.name
    if not force and revision and COMMIT.match(revision):
        folder = _cached_snapshot(storage, revision)
        if folder is not None:  # a commit never changes: a complete, sound copy needs no request
            problems = [_cache_problem(storage, folder / f) for f in MODEL_FILES + OPTIONAL_FILES
                        if os.path.lexists(folder / f)]
            outside = [p for p in problems if p and p[0] == "outside"]
            if outside:
                raise GencliError(f"{outside[0][1]}; repair it with `{repair}`")
            if not any(problems):
                return folder, revision
    _quiet_progress(quiet)
    try:
        return _download(repo_id, revision, label, storage, _Clock(limits, label), force=force, repair=repair)
    except _Unreachable as error:
        folder = None if force else _cached_snapshot(storage, revision or "main")
        if folder is not None:
            _check_snapshot(storage, folder, repair)
            return folder, folder.name
        if force:
            raise GencliError(f"download of {label} failed: {error}") from None
        raise GencliError(f"{label} is not in the local Hub cache, and {error}") from None


def check_repo_path(filename: str) -> None:
    """A file's path in a repo becomes a path under snapshots/ in the cache: relative, no empty, '.' or '..' parts."""
    parts = filename.split("/")
    if (len(filename) > 1000 or any(part in ("", ".", "..") for part in parts)
            or not filename.isprintable() or "\\" in filename):
        raise UsageError(f"{_shown(filename)} is not a valid file path in a Hub repo (a relative path with no "
                         "empty, '.' or '..' parts)")


def download_dataset_file(repo_id: str, filename: str, revision: str | None = None, *,
                          quiet: bool = False) -> Path:
    """Fetch one file of the Hub dataset repo ``repo_id`` at ``revision``; returns its path in the HF cache.

    The same client, checks and limits as download_repo, for one named file under datasets--org--name. A
    cached file is verified against its hash (and fetched again when bad); when the Hub cannot answer, a
    sound cached copy of the revision stands in.
    """
    check_repo_id(repo_id)
    if revision:
        check_revision(revision)
    check_repo_path(filename)
    if revision and re.fullmatch(r"[0-9a-f]{7,39}", revision):
        raise UsageError(f"revision {revision!r} looks like a short commit hash; give all 40 hex digits")
    limits = download_limits()
    label = f"hf:{repo_id}{f'@{revision}' if revision else ''}/{filename}"
    storage = _storage(repo_id, "dataset")
    files = (filename,)
    # There is no `gencli download` for datasets: dropping the cached repo makes the next run fetch it again.
    repair = f"rm -r {storage}"
    if _offline():
        folder = _cached_snapshot(storage, revision or "main", files)
        if folder is None:
            raise GencliError(f"{label} is not in the local Hub cache and HF_HUB_OFFLINE is set; run once while "
                              "online")
        _check_snapshot(storage, folder, repair, files)
        return folder / filename
    if revision and COMMIT.match(revision):
        folder = _cached_snapshot(storage, revision, files)
        if folder is not None and _cache_problem(storage, folder / filename) is None:
            return folder / filename  # a commit never changes: a sound copy needs no request
    _quiet_progress(quiet)
    try:
        folder, _ = _download(repo_id, revision, label, storage, _Clock(limits, label), force=False, repair=repair,
                              repo_type="dataset", required=files, optional=())
    except _Unreachable as error:
        folder = _cached_snapshot(storage, revision or "main", files)
        if folder is None:
            raise GencliError(f"{label} is not in the local Hub cache, and {error}") from None
        _check_snapshot(storage, folder, repair, files)
    return folder / filename


def _download(repo: str, revision: str | None, label: str, storage: Path, clock: _Clock, *, force: bool,
              repair: str, repo_type: str = "model", required: tuple[str, ...] = MODEL_FILES,
              optional: tuple[str, ...] = OPTIONAL_FILES) -> tuple[Path, str]:
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    req = _Request(repo, repo_type, label, constants.ENDPOINT, _headers(), clock, get_session())
    pinned = revision or "main"
    commit: str | None = None
    for filename in required + optional:
        try:
            meta = _head(req, filename, commit or pinned)
        except _Missing:
            if filename in required:
                hint = "; is it a gencli model?" if repo_type == "model" else ""
                raise GencliError(f"{_kind(repo_type)} {repo} has no {filename}"
                                  f"{f' at revision {revision}' if revision else ''}{hint}") from None
            continue
        except _Unreachable as error:
            if commit is None:
                raise  # nothing fetched yet: the caller may use the cache
            raise GencliError(f"download of {label} stopped: {error}") from None
        commit = meta.commit  # pinned for the other files
        _fetch_file(req, storage, filename, meta, force=force, repair=repair)
    assert commit is not None
    if not COMMIT.match(pinned):  # a branch or tag: remember where it pointed, once the snapshot is complete
        ref = storage / "refs" / pinned
        atomic_write(ref, commit.encode("utf-8"))
    return storage / "snapshots" / commit, commit


def _headers() -> dict[str, str]:
    """The token and a user agent, built here: huggingface_hub's build_hf_headers also fetches a registry of
    AI agents from the endpoint (a request with its own 3 s timeout, outside the download's limits)."""
    import platform

    import huggingface_hub

    from gencli import __version__

    headers = {"User-Agent": f"gencli/{__version__}; hf_hub/{huggingface_hub.__version__}; "
                             f"python/{platform.python_version()}",
               "Accept-Encoding": "identity"}  # sizes and hashes are of the file itself, not a compressed form
    token = huggingface_hub.get_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _fetch_file(req: _Request, storage: Path, filename: str, meta: _Meta, *, force: bool, repair: str) -> None:
    """Make snapshots/<commit>/<filename> a verified copy of the Hub's file, downloading it only if needed."""
    import filelock

    blob = storage / "blobs" / meta.etag
    pointer = storage / "snapshots" / meta.commit / filename
    if not force:
        if os.path.lexists(pointer):
            problem = _cache_problem(storage, pointer)
            if problem is not None and problem[0] == "outside":
                raise GencliError(f"{problem[1]}; repair it with `{repair}`")
            if pointer.is_file() and etag_digest(pointer, meta.etag) == meta.etag:
                return
        elif blob.is_file() and etag_digest(blob, meta.etag) == meta.etag:
            _link(blob, pointer)
            return
    blob.parent.mkdir(parents=True, exist_ok=True)
    # The same lock file as huggingface_hub's: two downloads of one blob take turns instead of racing.
    lock_path = storage.parent / ".locks" / storage.name / f"{meta.etag}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with filelock.FileLock(str(lock_path), timeout=max(req.clock.left(), 0)):
            part = blob.with_name(blob.name + ".incomplete")
            for attempt in (1, 2):  # a file that fails its hash is dropped and fetched once more
                _transfer(req, filename, meta, part)
                got = etag_digest(part, meta.etag)
                if got == meta.etag:
                    os.replace(part, blob)
                    break
                part.unlink()
                if attempt == 2:
                    raise GencliError(f"{filename} from {req.label} failed verification twice (its "
                                      f"{_digest_kind(meta.etag)} is {got}, the Hub's is {meta.etag}); a broken "
                                      "proxy or server? Nothing was cached")
    except filelock.Timeout:
        raise req.clock.deadline_error() from None
    _link(blob, pointer)


def _transfer(req: _Request, filename: str, meta: _Meta, part: Path) -> None:
    """GET the file into ``part``, resuming a partial file or a dropped connection with a Range request."""
    import httpx2
    from huggingface_hub.utils import tqdm

    headers = dict(req.headers)
    if not meta.same_origin:  # a signed CDN URL: the token stays with the Hub
        headers.pop("authorization", None)
        headers.pop("Authorization", None)
    drops = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if meta.size is not None and have > meta.size:
            have = 0
        if meta.size is not None and have == meta.size and have > 0:
            return
        ask = dict(headers, Range=f"bytes={have}-") if have else headers
        try:
            with req.session.stream("GET", meta.url, headers=ask, timeout=req.clock.timeout(),
                                    follow_redirects=True) as response:
                if response.status_code not in (200, 206):
                    raise _as_stopped(req, _answer_error(req, filename, meta.commit, response))
                if _is_html(response):
                    raise GencliError(f"download of {req.label} stopped: {req.endpoint} sent an HTML page for "
                                      f"{filename} (a proxy or login page?); check HF_ENDPOINT and the network")
                resumed = response.status_code == 206 and have > 0
                written = have if resumed else 0
                with part.open("ab" if resumed else "wb") as f, tqdm(
                        total=meta.size, initial=written, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=filename, leave=False) as progress:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
                        written += len(chunk)
                        progress.update(len(chunk))
                        if meta.size is not None and written > meta.size:
                            return  # more than the Hub announced: the hash check refuses it
                        if req.clock.left() <= 0:
                            raise req.clock.deadline_error()
            return
        except httpx2.TimeoutException:
            if req.clock.deadline_hit():
                raise req.clock.deadline_error() from None
            raise GencliError(f"download of {req.label} stopped: {filename}: no data "
                              f"{req.clock.stall_text()}") from None
        except (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ConnectError) as error:
            drops += 1  # the connection broke off: resume from what was written
            if drops > _DROPS:
                raise GencliError(f"download of {req.label} stopped: {filename}: the connection broke off "
                                  f"{drops} times ({_first_line(error)})") from None
        except httpx2.HTTPError as error:
            raise GencliError(f"download of {req.label} stopped: {filename}: {_first_line(error)}") from None


def _as_stopped(req: _Request, error: GencliError) -> GencliError:
    if isinstance(error, _Unreachable):  # the Hub answered the HEAD: this is not a reason to use the cache
        return GencliError(f"download of {req.label} stopped: {error}")
    return error


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


def check_run_folder(run_dir: Path) -> None:
    """Refuse to push what could not be loaded back: no model card, no config, not safetensors."""
    import json

    from gencli.tensorfile import read_header

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
