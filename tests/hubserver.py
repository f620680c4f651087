"""A loopback stand-in for the Hugging Face Hub, for tests (stdlib only).

It speaks just enough of the Hub's HTTP protocol for the *real* ``huggingface_hub`` client
(2.4, httpx2-based) to download from it and upload to it::

    with LoopbackHub() as hub:
        sha = hub.add_repo("org/model", {"config.json": b"{}"})
        path = hf_hub_download("org/model", "config.json", endpoint=hub.endpoint, cache_dir=tmp)

Supported client calls (anything else gets a 404 that names the unsupported route):

* ``hf_hub_download`` / ``get_hf_file_metadata``: HEAD and GET on
  ``/[datasets/]{repo_id}/resolve/{revision}/{path}``, revision = branch name or full commit sha,
  with Range support and the Hub's ``X-Error-Code`` headers on 404.
* ``HfApi.create_repo``, ``upload_folder`` / ``upload_file`` / ``create_commit``: ``POST
  /api/repos/create``, ``/api/{type}s/{repo}/preupload/{rev}``, ``/api/{type}s/{repo}/commit/{rev}``
  (ndjson), ``POST /api/validate-yaml`` (sent when a README.md is uploaded) and the git-LFS batch
  API for files at or above ``lfs_threshold`` bytes.
* ``HfApi.repo_info`` / ``list_repo_tree`` / ``list_repo_files`` and hence ``snapshot_download``.

Fault modes for download tests (each keyed by the path in the repo, any repo; ``times=None`` means every
request, a number means that many requests, then the file is served normally again):

* ``override_headers``: replace response headers of HEAD and GET (a path-traversal ``ETag``, a hostile
  ``X-Repo-Commit``, a wrong ``X-Linked-Etag``).
* ``corrupt_body``: GET sends other bytes (zeros of the right length, a wrong payload) under the file's
  honest headers.
* ``stall``: send ``after_bytes`` of the body (GET) or nothing at all (HEAD), then hold the connection
  open until the hub shuts down.
* ``trickle``: GET sends the body one byte every ``interval`` seconds.
* ``fail_with``: answer HEAD and GET with a plain response and none of the Hub's headers (an HTTP 500, a
  bare 404, a proxy's HTML page).

Xet is never advertised: download responses carry no ``X-Xet-Hash`` header, so the client falls
back to plain HTTP. Uploads of files the server calls "lfs" go through Xet whenever ``hf_xet`` is
installed, though, unless ``HF_HUB_DISABLE_XET=1`` is set before huggingface_hub is imported
(or ``huggingface_hub.constants.HF_HUB_DISABLE_XET`` is patched to True); files below
``lfs_threshold`` (default 10 MiB) are sent inline ("regular") and work either way.

Simplifications: no .gitattributes in the initial commit, no tags/PRs/gated repos, no auth check
except that a private repo needs *some* ``Authorization`` header to be read, LFS files are served
directly (the real Hub redirects them to a CDN), whole repos live in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["LoopbackHub", "git_blob_sha1"]

# URL path prefix of each repo type for "/resolve" and ".git" URLs (models have none).
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_TYPE_FROM_PREFIX = {None: "model", "datasets": "dataset", "spaces": "space"}
_TYPE_FROM_API_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}

_SHA1_RE = re.compile(r"[0-9a-f]{40}")
# repo ids are "name" or "namespace/name"; a leading "datasets/" or "spaces/" selects the repo type.
_REPO = r"(?:(?P<prefix>datasets|spaces)/)?(?P<repo>[^/]+(?:/[^/]+)?)"
_RESOLVE_RE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_LFS_BATCH_RE = re.compile(rf"^/{_REPO}\.git/info/lfs/objects/batch$")
_LFS_PUT_RE = re.compile(r"^/_loopback_lfs/(?P<oid>[0-9a-f]{64})$")  # our stand-in for the S3 upload URL
_API_REPO_RE = re.compile(
    r"^/api/(?P<plural>models|datasets|spaces)/(?P<repo>[^/]+(?:/[^/]+)?)"
    r"(?:/(?P<action>revision|tree|preupload|commit)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?$"
)
_XET_TOKEN_RE = re.compile(r"^/api/(models|datasets|spaces)/.+/xet-(read|write)-token/")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub sends as ETag for regular (non-LFS) files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(data: bytes) -> bytes:
    """The git-LFS pointer file that git stores in place of a large file."""
    sha256 = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()


@dataclass
class _Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, bytes]  # full tree at this commit: path in repo -> content


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit sha
    commits: dict[str, _Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        """Branch name or full 40-hex commit sha -> commit sha (None if unknown)."""
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class LoopbackHub:
    """In-memory Hub served on ``http://127.0.0.1:<free port>``; use it as a context manager.

    Files of ``lfs_threshold`` bytes or more are treated as git-LFS files: downloads carry
    ``X-Linked-Etag``/``X-Linked-Size`` and preupload tells the client to use the LFS protocol.
    """

    def __init__(self, *, lfs_threshold: int = 10 * 1024 * 1024) -> None:
        if lfs_threshold < 1:
            raise ValueError("lfs_threshold must be >= 1 (empty files are never LFS)")
        self.lfs_threshold = lfs_threshold
        self.requests: list[tuple[str, str]] = []  # (method, unquoted path without query)
        self.range_requests: list[tuple[str, str]] = []  # (unquoted path, Range header) of ranged requests
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lfs_objects: dict[str, bytes] = {}  # sha256 -> content, uploaded but maybe not committed yet
        self._interrupts: dict[str, int] = {}  # path in repo -> bytes to send before dropping the connection
        self._faults: dict[str, list[_Fault]] = {}  # path in repo -> faults to apply, first match wins
        self._closing = threading.Event()  # wakes stalled and trickling handlers at shutdown
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.hub = self  # type: ignore[attr-defined]
        self._open_sockets: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LoopbackHub:
        # A short poll interval keeps shutdown() (hence __exit__) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="loopback-hub", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        # The client pools keep-alive connections: drop them so idle handler threads exit now.
        with self._lock:
            sockets, self._open_sockets = self._open_sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()

    # ------------------------------------------------------------------ test-side API

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | None],
        *,
        revision_commit: str | None = None,
        repo_type: str = "model",
        private: bool = False,
        message: str = "add files",
    ) -> str:
        """Commit ``files`` on branch ``main`` (creating the repo if needed) and return the commit sha.

        The new tree is the previous one updated with ``files``; a value of ``None`` deletes that
        path. ``revision_commit`` forces the commit sha (40 lowercase hex chars), otherwise one is
        derived from the content. ``private`` only applies when the repo is created here.
        """
        if revision_commit is not None and not _SHA1_RE.fullmatch(revision_commit):
            raise ValueError(f"revision_commit must be 40 lowercase hex chars, got {revision_commit!r}")
        with self._lock:
            repo = self._repos.get((repo_type, repo_id)) or self._create_repo(repo_type, repo_id, private)
            tree = dict(repo.commits[repo.branches["main"]].files)
            for path, content in files.items():
                if content is None:
                    tree.pop(path, None)
                else:
                    tree[path] = bytes(content)
            return self._commit(repo, "main", tree, message, sha=revision_commit)

    def files(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> dict[str, bytes]:
        """What is stored at ``revision`` (branch or commit sha): path in repo -> content."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            sha = repo.resolve(revision) if repo is not None else None
            if sha is None:
                raise KeyError(f"no {repo_type} repo {repo_id!r} with revision {revision!r}")
            return dict(repo.commits[sha].files)

    def resolve_revision(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        """The commit sha a branch (or sha) points to, e.g. to compare with ``CommitInfo.oid``."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            sha = repo.resolve(revision) if repo is not None else None
            if sha is None:
                raise KeyError(f"no {repo_type} repo {repo_id!r} with revision {revision!r}")
            return sha

    def interrupt_next_download(self, filename: str, after_bytes: int) -> None:
        """The next GET of ``filename`` (path in repo, any repo) announces the full Content-Length
        but the connection is closed after ``after_bytes`` bytes of body."""
        with self._lock:
            self._interrupts[filename] = after_bytes

    def override_headers(self, filename: str, headers: dict[str, str], *, times: int | None = None) -> None:
        """HEAD and GET of ``filename`` carry ``headers`` in place of the honest ones (same names replaced)."""
        self._add_fault(filename, _Fault("headers", ("HEAD", "GET"), times, headers=dict(headers)))

    def corrupt_body(self, filename: str, body: bytes, *, times: int | None = None) -> None:
        """GET of ``filename`` sends ``body`` instead of the file, under the file's own ETag and commit."""
        self._add_fault(filename, _Fault("body", ("GET",), times, body=bytes(body)))

    def stall(self, filename: str, *, after_bytes: int = 0, method: str = "GET", times: int | None = None) -> None:
        """``method`` of ``filename`` goes silent: a GET after its headers and ``after_bytes`` of body, a HEAD
        before any answer. The connection stays open until the hub shuts down."""
        self._add_fault(filename, _Fault("stall", (method,), times, after_bytes=after_bytes))

    def trickle(self, filename: str, *, interval: float, times: int | None = None) -> None:
        """GET of ``filename`` sends the body one byte every ``interval`` seconds."""
        self._add_fault(filename, _Fault("trickle", ("GET",), times, interval=interval))

    def fail_with(self, filename: str, status: int, body: bytes = b"", *, content_type: str = "text/plain",
                  times: int | None = None) -> None:
        """HEAD and GET of ``filename`` get ``status`` and ``body`` with none of the Hub's headers (no
        X-Error-Code, X-Repo-Commit or ETag), as a broken server or a proxy would answer."""
        self._add_fault(filename, _Fault("response", ("HEAD", "GET"), times, status=status, body=bytes(body),
                                         headers={"Content-Type": content_type}))

    def _add_fault(self, filename: str, fault: _Fault) -> None:
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be >= 1 (or None for every request)")
        with self._lock:
            self._faults.setdefault(filename, []).append(fault)

    def _take_fault(self, filename: str, method: str) -> _Fault | None:
        """The first fault for this request, counting it as used."""
        with self._lock:
            for fault in self._faults.get(filename, []):
                if method in fault.methods:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults[filename].remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ internals (call with lock held)

    def _create_repo(self, repo_type: str, repo_id: str, private: bool) -> _Repo:
        repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private)
        self._repos[(repo_type, repo_id)] = repo
        # The Hub always creates an initial commit, so "main" exists before the first upload.
        self._commit(repo, "main", {}, "initial commit")
        return repo

    def _commit(self, repo: _Repo, branch: str, tree: dict[str, bytes], message: str, sha: str | None = None) -> str:
        parent = repo.branches.get(branch)
        if sha is None:
            digest = hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{message}\n".encode())
            for path in sorted(tree):
                digest.update(f"{path}\0{git_blob_sha1(tree[path])}\n".encode())
            sha = digest.hexdigest()
        if sha in repo.commits:
            raise ValueError(f"commit {sha} already exists in {repo.repo_id}")
        repo.commits[sha] = _Commit(sha=sha, parent=parent, message=message, files=tree)
        repo.branches[branch] = sha
        return sha

    def _is_lfs(self, content: bytes) -> bool:
        return len(content) >= self.lfs_threshold

    def _file_oids(self, content: bytes) -> tuple[str, str | None]:
        """(git blob id, sha256 if LFS else None) as the Hub reports them."""
        if self._is_lfs(content):
            return git_blob_sha1(_lfs_pointer(content)), hashlib.sha256(content).hexdigest()
        return git_blob_sha1(content), None

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.endpoint}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"


@dataclass
class _Fault:
    kind: str  # "headers" | "body" | "stall" | "trickle" | "response"
    methods: tuple[str, ...]
    times: int | None  # requests left to fault; None: all of them
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    status: int = 200
    after_bytes: int = 0
    interval: float = 0.0


# How long a stalled handler holds its connection at most (the hub's shutdown ends it sooner).
_STALL_LIMIT = 120.0


class _HubError(Exception):
    """Raised by route handlers; becomes an error response with the Hub's error headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra  # additional fields of the JSON error body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub; every response carries a Content-Length
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid ~40 ms delayed-ACK stalls
    server: ThreadingHTTPServer

    # ------------------------------------------------------------------ plumbing

    @property
    def hub(self) -> LoopbackHub:
        return self.server.hub  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._open_sockets.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.body = self._read_body()  # always drain the body: the connection is reused
        path = unquote(url.path)
        with self.hub._lock:
            self.hub.requests.append((self.command, path))
            if "Range" in self.headers:
                self.hub.range_requests.append((path, self.headers["Range"]))
        try:
            self._route(url.path)
        except _HubError as err:
            headers = {"X-Error-Message": err.message, **err.headers}
            if err.code is not None:
                headers["X-Error-Code"] = err.code  # the client maps this to its exception classes
            self._send_json(err.status, {"error": err.message, **err.extra}, headers)

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # streamed uploads
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # optional trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length: int | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _json_body(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as exc:
            raise _HubError(400, f"invalid JSON body: {exc}") from None

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and "Authorization" not in self.headers:
            # The Hub hides private repos from anonymous users behind a 401 "not found".
            raise _HubError(401, "Repository not found", "RepoNotFound")
        return repo

    def _get_commit(self, repo: _Repo, revision: str) -> _Commit:
        sha = repo.resolve(revision)
        if sha is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[sha]

    def _get_branch(self, repo: _Repo, revision: str) -> str:
        """Commits (and preuploads) must target an existing branch, not a commit sha."""
        if revision not in repo.branches:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return revision

    def _route(self, raw_path: str) -> None:
        method = self.command
        if method in ("HEAD", "GET") and (m := _RESOLVE_RE.match(raw_path)):
            repo_type, repo_id = _TYPE_FROM_PREFIX[m["prefix"]], unquote(m["repo"])
            return self._resolve_file(repo_type, repo_id, unquote(m["rev"]), unquote(m["path"]))
        if method == "POST" and raw_path == "/api/repos/create":
            return self._create_repo()
        if method == "POST" and raw_path == "/api/validate-yaml":
            return self._send_json(200, {"errors": [], "warnings": []})  # README metadata: accept anything
        if m := _API_REPO_RE.match(raw_path):
            repo_type, repo_id = _TYPE_FROM_API_PLURAL[m["plural"]], unquote(m["repo"])
            rev, action = unquote(m["rev"] or "main"), m["action"]
            if method == "GET" and action in (None, "revision"):
                return self._repo_info(repo_type, repo_id, rev)
            if method == "GET" and action == "tree":
                return self._tree(repo_type, repo_id, rev, unquote(m["path"] or ""))
            if method == "POST" and action == "preupload":
                return self._preupload(repo_type, repo_id, rev)
            if method == "POST" and action == "commit":
                return self._create_commit(repo_type, repo_id, rev)
        if method == "POST" and (m := _LFS_BATCH_RE.match(raw_path)):
            return self._lfs_batch(_TYPE_FROM_PREFIX[m["prefix"]], unquote(m["repo"]))
        if method == "PUT" and (m := _LFS_PUT_RE.match(raw_path)):
            return self._lfs_put(m["oid"])
        if _XET_TOKEN_RE.match(raw_path):
            raise _HubError(404, "LoopbackHub does not speak Xet: set HF_HUB_DISABLE_XET=1 to upload LFS files")
        raise _HubError(404, f"LoopbackHub: unsupported route {method} {raw_path}")

    # ------------------------------------------------------------------ downloads

    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.hub
        fault = hub._take_fault(path, self.command)
        if fault is not None and fault.kind == "response":
            return self._send(fault.status, fault.body, fault.headers)
        if fault is not None and fault.kind == "stall" and self.command == "HEAD":
            hub._closing.wait(_STALL_LIMIT)
            self.close_connection = True
            return None
        with hub._lock:
            commit = self._get_commit(self._get_repo(repo_type, repo_id), revision)
            content = commit.files.get(path)
            if content is None:
                # X-Repo-Commit lets the client cache the file's absence for this commit.
                raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
            interrupt_after = hub._interrupts.pop(path, None) if self.command == "GET" else None

        blob_id, lfs_sha256 = hub._file_oids(content)
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "X-Repo-Commit": commit.sha,  # the client needs it to place the file in snapshots/<sha>/
            "ETag": f'"{blob_id}"',  # git blob id; the client names the cached blob after it...
        }
        if lfs_sha256 is not None:
            # ...unless X-Linked-Etag is present: LFS blobs are cached under their sha256.
            headers["X-Linked-Etag"] = f'"{lfs_sha256}"'
            headers["X-Linked-Size"] = str(len(content))
        if fault is not None and fault.kind == "headers":
            headers.update(fault.headers)
        if self.command == "HEAD":
            return self._send(200, b"", headers, length=len(content))
        if fault is not None and fault.kind == "body":
            content = fault.body
        if fault is not None and fault.kind in ("stall", "trickle"):
            return self._send_slowly(content, headers, fault)

        status, body = 200, content
        if "Range" in self.headers:  # the client resumes interrupted downloads with "bytes=<n>-"
            start, end = self._parse_range(self.headers["Range"], len(content))
            status, body = 206, content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        if interrupt_after is None:
            return self._send(status, body, headers)
        # Simulated network failure: promise the whole body, send part of it, hang up.
        self._send(status, body[:interrupt_after], headers, length=len(body))
        self.wfile.flush()
        self.close_connection = True

    def _send_slowly(self, content: bytes, headers: dict, fault: _Fault) -> None:
        """A stalled body (some bytes, then silence) or a trickled one (a byte per interval)."""
        closing = self.hub._closing
        self._send(200, b"", headers, length=len(content))
        try:
            if fault.kind == "stall":
                self.wfile.write(content[: fault.after_bytes])
                self.wfile.flush()
                closing.wait(_STALL_LIMIT)
            else:
                for i in range(len(content)):
                    self.wfile.write(content[i : i + 1])
                    self.wfile.flush()
                    if closing.wait(fault.interval):
                        break
        except OSError:  # the client gave up and hung up: what these faults are for
            pass
        self.close_connection = True

    def _parse_range(self, header: str, size: int) -> tuple[int, int]:
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
        if m is None or m[1] == m[2] == "":
            raise _HubError(400, f"unsupported Range header: {header!r}")
        if m[1] == "":  # "bytes=-N": the last N bytes
            start, end = max(size - int(m[2]), 0), size - 1
        else:
            start, end = int(m[1]), min(int(m[2]), size - 1) if m[2] else size - 1
        if start >= size or start > end:
            raise _HubError(416, "Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"})
        return start, end

    # ------------------------------------------------------------------ repo metadata

    def _create_repo(self) -> None:
        payload = self._json_body()
        name, organization = payload.get("name"), payload.get("organization")
        if not name:
            raise _HubError(400, "missing repo name")
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise _HubError(400, f"unsupported repo type {repo_type!r}")
        repo_id = f"{organization}/{name}" if organization else name
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self.hub._lock:
            existing = self.hub._repos.get((repo_type, repo_id))
            if existing is not None:
                # 409 is what `create_repo(..., exist_ok=True)` tolerates; it then reads "url" from the body.
                raise _HubError(409, f"You already created this {repo_type} repo", url=self.hub._repo_url(existing))
            repo = self.hub._create_repo(repo_type, repo_id, private)
        self._send_json(200, {"url": self.hub._repo_url(repo), "name": repo_id, "id": repo_id})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            repo = self._get_repo(repo_type, repo_id)
            commit = self._get_commit(repo, revision)
        siblings = [{"rfilename": path} for path in sorted(commit.files)]
        self._send_json(200, {"id": repo_id, "sha": commit.sha, "private": repo.private, "siblings": siblings})

    def _tree(self, repo_type: str, repo_id: str, revision: str, folder: str) -> None:
        with self.hub._lock:
            commit = self._get_commit(self._get_repo(repo_type, repo_id), revision)
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries: dict[str, dict] = {}
        for path in sorted(commit.files):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            # Folders are listed too; their oid is a stand-in (no real git trees here).
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                folder_path = prefix + "/".join(parts[:depth])
                entries.setdefault(folder_path, {"type": "directory", "path": folder_path, "oid": "0" * 40})
            if recursive or len(parts) == 1:
                content = commit.files[path]
                blob_id, lfs_sha256 = self.hub._file_oids(content)
                entry = {"type": "file", "path": path, "size": len(content), "oid": blob_id}
                if lfs_sha256 is not None:
                    pointer_size = len(_lfs_pointer(content))
                    entry["lfs"] = {"oid": lfs_sha256, "size": len(content), "pointerSize": pointer_size}
                entries[path] = entry
        if prefix and not entries:
            raise _HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        self._send_json(200, list(entries.values()))

    # ------------------------------------------------------------------ uploads

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.hub
        with hub._lock:
            repo = self._get_repo(repo_type, repo_id)
            current = repo.commits[repo.branches[self._get_branch(repo, revision)]].files
        answers = []
        for item in self._json_body().get("files", []):
            existing = current.get(item["path"])
            # Remote oid lets the client skip unchanged files: sha256 for LFS, git blob id otherwise.
            oid = None
            if existing is not None:
                blob_id, lfs_sha256 = hub._file_oids(existing)
                oid = lfs_sha256 or blob_id
            mode = "lfs" if item.get("size", 0) >= hub.lfs_threshold else "regular"
            answers.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._send_json(200, {"files": answers})

    def _create_commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        if self.query.get("create_pr", ["0"])[0] not in ("0", "false", ""):
            raise _HubError(400, "LoopbackHub does not support pull requests (create_pr)")
        # Body is ndjson: a "header" line, then one line per operation.
        try:
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise _HubError(400, f"invalid ndjson commit payload: {exc}") from None
        hub = self.hub
        with hub._lock:
            repo = self._get_repo(repo_type, repo_id)
            branch = self._get_branch(repo, revision)
            head = repo.branches[branch]
            tree = dict(repo.commits[head].files)
            message = "commit"
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "header":
                    message = value.get("summary") or message
                    parent = value.get("parentCommit")
                    if parent is not None and parent != head:
                        raise _HubError(412, f"A commit has happened since {parent}: head of {branch} is {head}")
                elif key == "file":  # regular file, content inline
                    raw = value["content"]
                    tree[value["path"]] = base64.b64decode(raw) if value.get("encoding") == "base64" else raw.encode()
                elif key == "lfsFile":  # content was uploaded beforehand through the LFS batch API
                    tree[value["path"]] = self._lfs_content(repo, value["oid"])
                elif key == "deletedFile":
                    if tree.pop(value["path"], None) is None:
                        raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    tree = {p: c for p, c in tree.items() if not p.startswith(folder)}
                else:
                    raise _HubError(400, f"LoopbackHub: unsupported commit operation {key!r}")
            sha = hub._commit(repo, branch, tree, message)
        self._send_json(200, {"success": True, "commitOid": sha, "commitUrl": f"{hub._repo_url(repo)}/commit/{sha}"})

    def _lfs_content(self, repo: _Repo, oid: str) -> bytes:
        if oid in self.hub._lfs_objects:
            return self.hub._lfs_objects[oid]
        for commit in repo.commits.values():  # e.g. a copy of an LFS file already in the repo
            for content in commit.files.values():
                if self.hub._is_lfs(content) and hashlib.sha256(content).hexdigest() == oid:
                    return content
        raise _HubError(422, f"LFS object {oid} was never uploaded")

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        payload = self._json_body()
        with self.hub._lock:
            self._get_repo(repo_type, repo_id)
            known = set(self.hub._lfs_objects)
        if payload.get("operation") != "upload":
            raise _HubError(400, "LoopbackHub only supports the LFS 'upload' operation")
        objects = []
        for obj in payload.get("objects", []):
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in known:  # no "actions" means "already uploaded, skip it"
                answer["actions"] = {"upload": {"href": f"{self.hub.endpoint}/_loopback_lfs/{obj['oid']}"}}
            objects.append(answer)
        body = json.dumps({"transfer": "basic", "objects": objects}).encode()
        self._send(200, body, {"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, oid: str) -> None:
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise _HubError(400, f"uploaded content does not match sha256 {oid}")
        with self.hub._lock:
            self.hub._lfs_objects[oid] = self.body
        self._send(200, b"", {"ETag": f'"{hashlib.md5(self.body).hexdigest()}"'})  # S3 answers with an ETag
