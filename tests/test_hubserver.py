"""The loopback Hub (tests/hubserver.py) driven by the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib leaves tests/ off sys.path
from hubserver import LoopbackHub, git_blob_sha1  # noqa: E402

TOKEN = "hf_loopback_dummy_token"  # any string: the loopback Hub only checks one is present for private repos


@pytest.fixture(autouse=True)
def _hermetic_hf(monkeypatch, tmp_path):
    # huggingface_hub reads these at import time: patch the parsed constants, not the environment.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)  # default client behaviour unless a test says so
    # Read at call time: never send (or need) a developer's real token.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    # hf_xet's session (created by upload_folder even for inline uploads) writes logs under these.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "hf_home" / "xet"))


@pytest.fixture
def hub():
    with LoopbackHub() as server:
        yield server


def _download(hub: LoopbackHub, cache: Path, repo_id: str, filename: str, **kwargs) -> Path:
    return Path(hf_hub_download(repo_id, filename, endpoint=hub.endpoint, cache_dir=cache, **kwargs))


def test_download_by_branch_and_by_commit(hub, tmp_path):
    first = hub.add_repo("org/model", {"config.json": b'{"v": 1}', "weights/w.bin": b"\x00\x01" * 50})
    second = hub.add_repo("org/model", {"config.json": b'{"v": 2}'})
    assert first != second and len(second) == 40
    assert hub.files("org/model", first)["config.json"] == b'{"v": 1}'
    assert hub.files("org/model") == {"config.json": b'{"v": 2}', "weights/w.bin": b"\x00\x01" * 50}

    path = _download(hub, tmp_path, "org/model", "config.json")
    assert path.read_bytes() == b'{"v": 2}'
    # The commit shows up only in the cache layout: snapshots/<sha>/<file> and refs/<branch>.
    assert path.parent.name == second
    storage = tmp_path / "models--org--model"
    assert (storage / "refs" / "main").read_text() == second
    assert path.resolve().name == git_blob_sha1(b'{"v": 2}')  # blob named after the ETag

    old = _download(hub, tmp_path, "org/model", "config.json", revision=first)
    assert old.read_bytes() == b'{"v": 1}' and old.parent.name == first
    nested = _download(hub, tmp_path, "org/model", "weights/w.bin", revision=first)
    assert nested.read_bytes() == b"\x00\x01" * 50

    url_path = "/org/model/resolve/main/config.json"
    assert hub.requests[:2] == [("HEAD", url_path), ("GET", url_path)]
    # A file already cached under a full commit sha is returned without any request.
    before = len(hub.requests)
    assert _download(hub, tmp_path, "org/model", "config.json", revision=first) == old
    assert len(hub.requests) == before

    meta = get_hf_file_metadata(hf_hub_url("org/model", "config.json", endpoint=hub.endpoint))
    assert (meta.commit_hash, meta.etag, meta.size, meta.xet_file_data) == (second, git_blob_sha1(b'{"v": 2}'), 8, None)


def test_explicit_commit_sha_and_dataset_repo(hub, tmp_path):
    sha = "ab" * 20
    assert hub.add_repo("org/data", {"train.csv": b"a,b\n1,2\n"}, revision_commit=sha, repo_type="dataset") == sha
    path = _download(hub, tmp_path, "org/data", "train.csv", repo_type="dataset", revision=sha)
    assert path.read_bytes() == b"a,b\n1,2\n"
    assert hub.requests[0] == ("HEAD", f"/datasets/org/data/resolve/{sha}/train.csv")
    with pytest.raises(RepositoryNotFoundError):  # same id, other repo type
        _download(hub, tmp_path, "org/data", "train.csv")


def test_lfs_file_download_uses_linked_etag(tmp_path):
    big = os.urandom(5000)
    with LoopbackHub(lfs_threshold=1024) as hub:
        hub.add_repo("org/model", {"model.safetensors": big, "small.txt": b"hi"})
        meta = get_hf_file_metadata(hf_hub_url("org/model", "model.safetensors", endpoint=hub.endpoint))
        assert meta.etag == hashlib.sha256(big).hexdigest() and meta.size == len(big)
        path = _download(hub, tmp_path, "org/model", "model.safetensors")
    assert path.read_bytes() == big
    assert path.resolve().name == hashlib.sha256(big).hexdigest()  # LFS blobs are cached under their sha256


def test_missing_file_repo_and_revision_raise_hub_errors(hub, tmp_path):
    sha = hub.add_repo("org/model", {"config.json": b"{}"})
    with pytest.raises(EntryNotFoundError) as excinfo:
        _download(hub, tmp_path, "org/model", "nope.bin")
    assert excinfo.value.response.status_code == 404
    # The client records the absence for that commit (used by try_to_load_from_cache).
    assert (tmp_path / "models--org--model" / ".no_exist" / sha / "nope.bin").exists()
    with pytest.raises(RepositoryNotFoundError):
        _download(hub, tmp_path, "org/missing", "config.json")
    with pytest.raises(RevisionNotFoundError):
        _download(hub, tmp_path, "org/model", "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        _download(hub, tmp_path, "org/model", "config.json", revision="0" * 40)


def test_interrupted_download_is_retried_by_the_client(hub, tmp_path):
    data = os.urandom(200_000)
    hub.add_repo("org/model", {"big.bin": data})
    hub.interrupt_next_download("big.bin", after_bytes=1000)
    # httpx2 reports the short body as RemoteProtocolError; hf_hub_download sleeps 1 s and retries
    # inside the same call. It resumes from the bytes it has *written*, and it writes in
    # DOWNLOAD_CHUNK_SIZE (10 MiB) pieces, so for a small file the retry starts over without Range.
    path = _download(hub, tmp_path, "org/model", "big.bin")
    assert path.read_bytes() == data
    gets = [r for r in hub.requests if r[0] == "GET"]
    assert gets == [("GET", "/org/model/resolve/main/big.bin")] * 2
    assert hub.range_requests == []


def test_interrupted_download_resumes_with_a_range_request(hub, tmp_path, monkeypatch):
    from huggingface_hub import file_download

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)  # read per call: small pieces get written
    monkeypatch.setattr(file_download, "time", type("NoSleep", (), {"sleep": staticmethod(lambda s: None)}))
    data = os.urandom(20_000)
    hub.add_repo("org/model", {"big.bin": data})
    hub.interrupt_next_download("big.bin", after_bytes=5000)
    path = _download(hub, tmp_path, "org/model", "big.bin")
    assert path.read_bytes() == data
    assert hub.range_requests == [("/org/model/resolve/main/big.bin", "bytes=4096-")]  # 4 whole pieces kept


def test_create_repo_upload_folder_then_download(hub, tmp_path):
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    url = api.create_repo("me/fresh", private=True, exist_ok=True)
    assert (url.repo_id, url.endpoint, str(url)) == ("me/fresh", hub.endpoint, f"{hub.endpoint}/me/fresh")
    api.create_repo("me/fresh", exist_ok=True)  # 409 from the server, tolerated
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo("me/fresh")
    assert excinfo.value.response.status_code == 409

    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "logs" / "deep").mkdir(parents=True)
    (folder / "model.json").write_bytes(b'{"dim": 4}')
    (folder / "sub" / "vocab.txt").write_bytes(b"a\nb\n")
    (folder / "logs" / "run.log").write_bytes(b"noise")
    (folder / "logs" / "deep" / "more.log").write_bytes(b"noise")
    info = api.upload_folder(repo_id="me/fresh", folder_path=folder, ignore_patterns=["logs/"])

    assert hub.files("me/fresh") == {"model.json": b'{"dim": 4}', "sub/vocab.txt": b"a\nb\n"}
    assert info.oid == hub.resolve_revision("me/fresh")
    assert ("POST", "/api/models/me/fresh/preupload/main") in hub.requests
    assert ("POST", "/api/models/me/fresh/commit/main") in hub.requests

    cache = tmp_path / "cache"
    path = _download(hub, cache, "me/fresh", "sub/vocab.txt")
    assert path.read_bytes() == b"a\nb\n" and path.parent.parent.name == info.oid
    with pytest.raises(RepositoryNotFoundError):  # private: anonymous requests get a 401 "not found"
        _download(hub, cache, "me/fresh", "model.json", token=False)

    # A second upload moves main; the next download by branch picks up the new commit.
    (folder / "sub" / "vocab.txt").write_bytes(b"a\nb\nc\n")
    info2 = api.upload_folder(repo_id="me/fresh", folder_path=folder, ignore_patterns=["logs/"])
    assert info2.oid != info.oid
    path2 = _download(hub, cache, "me/fresh", "sub/vocab.txt")
    assert path2.read_bytes() == b"a\nb\nc\n" and path2.parent.parent.name == info2.oid
    assert path.read_bytes() == b"a\nb\n"  # the old snapshot is untouched


@pytest.mark.filterwarnings("ignore:Use .content=:DeprecationWarning")  # raised inside the client's LFS PUT
def test_lfs_upload_without_xet(monkeypatch, tmp_path):
    # Files the server calls "lfs" go through Xet whenever hf_xet is installed: turn it off.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    big = os.urandom(4096)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(big)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# model\n")
    with LoopbackHub(lfs_threshold=1024) as hub:
        api = HfApi(endpoint=hub.endpoint, token=TOKEN)
        api.create_repo("me/big")
        info = api.upload_folder(repo_id="me/big", folder_path=folder)
        assert hub.files("me/big") == {"model.safetensors": big, "README.md": (folder / "README.md").read_bytes()}
        assert ("POST", "/me/big.git/info/lfs/objects/batch") in hub.requests
        assert ("PUT", f"/_loopback_lfs/{hashlib.sha256(big).hexdigest()}") in hub.requests
        assert ("POST", "/api/validate-yaml") in hub.requests

        # Unchanged files are detected from the preupload oids: no new commit.
        again = api.upload_folder(repo_id="me/big", folder_path=folder)
        assert again.oid == info.oid == hub.resolve_revision("me/big")

        path = _download(hub, tmp_path / "cache", "me/big", "model.safetensors")
        assert path.read_bytes() == big


def test_snapshot_download(hub, tmp_path):
    files = {"config.json": b"{}", "a/b/c.txt": b"deep", "a/d.txt": b"d"}
    sha = hub.add_repo("org/model", files)
    folder = Path(snapshot_download("org/model", endpoint=hub.endpoint, cache_dir=tmp_path))
    assert folder.name == sha
    got = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert got == files
    assert sorted(HfApi(endpoint=hub.endpoint).list_repo_files("org/model")) == sorted(files)


def test_offline_mode_serves_from_cache(hub, tmp_path, monkeypatch):
    hub.add_repo("org/model", {"config.json": b"{}"})
    path = _download(hub, tmp_path, "org/model", "config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 at import time does
    before = len(hub.requests)
    assert _download(hub, tmp_path, "org/model", "config.json") == path  # resolved through refs/main
    with pytest.raises(LocalEntryNotFoundError):
        _download(hub, tmp_path, "org/model", "other.json")
    assert len(hub.requests) == before


def test_fault_modes_reach_the_real_client(hub, tmp_path):
    import httpx2

    data = b'{"v": 1}'
    hub.add_repo("org/model", {"config.json": data, "other.txt": b"x" * 100})
    url = hf_hub_url("org/model", "config.json", endpoint=hub.endpoint)
    other = hf_hub_url("org/model", "other.txt", endpoint=hub.endpoint)

    hub.override_headers("config.json", {"ETag": '"../evil"', "X-Repo-Commit": "c" * 40}, times=1)
    meta = get_hf_file_metadata(url)
    assert (meta.etag, meta.commit_hash) == ("../evil", "c" * 40)
    assert get_hf_file_metadata(url).etag == git_blob_sha1(data)  # times=1: honest again

    hub.corrupt_body("config.json", bytes(len(data)), times=1)
    with httpx2.Client() as client:
        response = client.get(url)
        assert response.content == bytes(len(data)) and response.headers["ETag"] == f'"{git_blob_sha1(data)}"'
        assert client.get(url).content == data

        hub.fail_with("config.json", 500, b"oops", times=1)
        response = client.get(url)
        assert (response.status_code, response.content) == (500, b"oops")
        assert "X-Repo-Commit" not in response.headers and "X-Error-Code" not in response.headers

        hub.stall("other.txt", after_bytes=10, times=1)
        with pytest.raises(httpx2.ReadTimeout), client.stream("GET", other, timeout=0.3) as streamed:
            for _ in streamed.iter_bytes():
                pass
        hub.stall("other.txt", method="HEAD", times=1)
        with pytest.raises(httpx2.ReadTimeout):
            client.head(other, timeout=0.3)

        hub.trickle("other.txt", interval=0.001, times=1)
        assert client.get(other).content == b"x" * 100
