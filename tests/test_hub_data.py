"""--data hf:org/name[@rev]/path: a file of a Hub dataset repo, fetched by gencli's own Hub client (issue 20, item 3).

Every run is a subprocess with its own HF_HOME under tmp_path, against the loopback Hub (tests/hubserver.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import gencli_env, run_gencli
from hubserver import LoopbackHub, git_blob_sha1
from test_cli import assert_one_error_line
from test_hub_downloads import closed_port, timed_gencli
from test_hub_weights import hub_env

TEXT = ("It was a bright cold day in April, and the clocks were striking thirteen. " * 5).encode()


@pytest.fixture
def hub():
    with LoopbackHub() as server:
        yield server


def train(env: dict[str, str], data: str, out: Path, timeout: float = 120):
    return run_gencli("train", "charrnn", "--preset", "tiny", "--steps", "2", "--data", data, "--out", str(out),
                      "-q", env=env, timeout=timeout)


def dataset_cache(home: Path) -> Path:
    return home / "hub" / "datasets--org--texts"


@pytest.mark.parametrize("at", ["", "@main", "@commit"])
def test_train_on_a_dataset_repo_file(hub, tmp_path, at):
    commit = hub.add_repo("org/texts", {"corpus.txt": TEXT, "sub/more.txt": TEXT[::-1]}, repo_type="dataset")
    at = at.replace("commit", commit)
    home = tmp_path / "hf"
    process = train(hub_env(hub, home), f"hf:org/texts{at}/sub/more.txt", tmp_path / "run")
    assert process.returncode == 0, process.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()
    cached = dataset_cache(home) / "snapshots" / commit / "sub" / "more.txt"
    assert cached.read_bytes() == TEXT[::-1]
    assert cached.resolve().parent == (dataset_cache(home) / "blobs").resolve()  # huggingface_hub's layout
    assert ("HEAD", f"/datasets/org/texts/resolve/{at[1:] or 'main'}/sub/more.txt") in hub.requests
    # The cached file stands in when the Hub is offline, and a pinned commit asks nothing at all.
    offline = train(hub_env(hub, home, HF_HUB_OFFLINE="1"), f"hf:org/texts{at}/sub/more.txt", tmp_path / "run2")
    assert offline.returncode == 0, offline.stderr


@pytest.mark.parametrize("data", ["hf:org/texts/corpus.txt", "hf:org/texts@v1/corpus.txt",
                                  "hf:org/texts@" + "a" * 40 + "/corpus.txt"])
def test_data_with_no_network_fails_at_once(tmp_path, data):
    env = gencli_env(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HOME=str(tmp_path / "hf"))
    process, elapsed = timed_gencli("train", "charrnn", "--preset", "tiny", "--steps", "2", "--data", data,
                                    "--out", str(tmp_path / "run"), "-q", env=env)
    assert process.returncode == 1 and process.stdout == b""
    assert_one_error_line(process.stderr, data, "cannot connect", "not in the local Hub cache")
    # The same bound as test_weights_with_no_network_fail_at_once: 2 s beyond a command that fails locally.
    local, startup = timed_gencli("train", "charrnn", "--preset", "tiny", "--steps", "2", "--data",
                                  "./does-not-exist.txt", "--out", str(tmp_path / "run"), "-q", env=env)
    assert local.returncode == 2
    assert elapsed < startup + 2.0, f"{elapsed:.1f} s (start-up {startup:.1f} s): retried instead of failing at once"


@pytest.mark.parametrize("body", [bytes(len(TEXT)), b""], ids=["zeros", "empty"])
def test_a_corrupt_dataset_file_is_refused_and_not_cached(hub, tmp_path, body):
    commit = hub.add_repo("org/texts", {"corpus.txt": TEXT}, repo_type="dataset")
    hub.corrupt_body("corpus.txt", body)
    home = tmp_path / "hf"
    process = train(hub_env(hub, home), "hf:org/texts/corpus.txt", tmp_path / "run")
    assert process.returncode == 1 and process.stdout == b""
    assert_one_error_line(process.stderr, "corpus.txt", "failed verification twice", git_blob_sha1(TEXT))
    assert not (dataset_cache(home) / "snapshots" / commit / "corpus.txt").exists()
    assert [p for p in (dataset_cache(home) / "blobs").iterdir() if p.read_bytes() == body] == []
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("data", ["hf:org/texts/../x.txt", "hf:org/texts/a/../../x.txt", "hf:org/texts//etc/passwd",
                                  "hf:org/texts/a//b.txt", "hf:org/texts/./x.txt", "hf:org/texts@main/../x.txt"])
def test_a_file_path_that_leaves_the_repo_is_one_clear_line(hub, tmp_path, data):
    hub.add_repo("org/texts", {"corpus.txt": TEXT}, repo_type="dataset")
    process = train(hub_env(hub, tmp_path / "hf"), data, tmp_path / "run")
    assert process.returncode == 2 and process.stdout == b""
    assert_one_error_line(process.stderr, data, "not a valid file path")
    assert hub.requests == []
    assert not (tmp_path / "hf").exists()  # nothing asked, nothing written
