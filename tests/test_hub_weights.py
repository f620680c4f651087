"""Weights from the Hugging Face Hub, against the loopback Hub (tests/hubserver.py) and the real client.

Every gencli run is a subprocess, as a user runs it: huggingface_hub reads HF_ENDPOINT, HF_HOME and
HF_HUB_OFFLINE when it is imported, so the environment is the interface.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import gencli_env, run_gencli
from hubserver import LoopbackHub
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from test_cli import assert_one_error_line, gencli_inprocess

TOKEN = "hf_loopback_dummy_token"
MODEL_FILES = ("config.json", "model.safetensors", "README.md")


@pytest.fixture
def hub():
    with LoopbackHub() as server:
        yield server


def hub_env(hub: LoopbackHub, home: Path, **extra: str) -> dict[str, str]:
    return gencli_env(HF_ENDPOINT=hub.endpoint, HF_HOME=str(home), HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1", **extra)


def run_files(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in MODEL_FILES}


def other_weights(run: Path) -> bytes:
    """The run's weights, changed enough to sample different text."""
    tensors = load_safetensors_bytes((run / "model.safetensors").read_bytes())
    tensors["head.bias"] = tensors["head.bias"] + torch.linspace(-3, 3, tensors["head.bias"].numel())
    return save_safetensors_bytes(tensors, metadata={"format": "pt"})


def sample(env: dict[str, str], *args: str) -> bytes:
    process = run_gencli("sample", "charrnn", "--length", "40", "--seed", "3", *args, env=env)
    assert process.returncode == 0, process.stderr
    assert process.stderr == ""  # no progress bars or messages when stderr is not a terminal
    return process.stdout


# ---- push and download --------------------------------------------------------------------------------


def test_push_uploads_the_model_but_not_the_training_state(hub, tiny_run: Path, tmp_path: Path) -> None:
    assert any((tiny_run / "training_state").iterdir())  # there is something to leave out
    process = run_gencli("push", str(tiny_run), "org/tiny", env=hub_env(hub, tmp_path / "hf"))
    assert process.returncode == 0, process.stderr
    files = hub.files("org/tiny")
    for name, data in run_files(tiny_run).items():
        assert files[name] == data
    assert not [name for name in files if name.startswith("training_state") or name.endswith((".tmp", ".partial"))]
    assert hub.resolve_revision("org/tiny") in process.stdout.decode()


@pytest.mark.parametrize(("prepare", "args", "code", "message"), [
    (lambda run: (run / "README.md").unlink(), [], 2, "has no model card"),
    (lambda run: (run / "model.safetensors").write_bytes(b"\x80\x04junk"), [], 1, "pickle"),
    (lambda run: None, ["--revision", "no-such-branch"], 1, "has no branch 'no-such-branch'"),
])
def test_push_refuses_what_could_not_be_loaded_back(hub, tiny_run, tmp_path, prepare, args, code, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    prepare(run)
    process = run_gencli("push", str(run), "org/refused", *args, env=hub_env(hub, tmp_path / "hf"))
    assert process.returncode == code
    assert_one_error_line(process.stderr, message)


def test_download_then_offline_sampling_needs_no_network(capsys, hub, tiny_run: Path, tmp_path: Path) -> None:
    commit = hub.add_repo("org/model", run_files(tiny_run))
    home = tmp_path / "hf"
    process = run_gencli("download", "org/model", env=hub_env(hub, home))
    assert process.returncode == 0, process.stderr
    assert process.stdout.decode().startswith(f"org/model@{commit} -> ")
    before = len(hub.requests)
    text = sample(hub_env(hub, home, HF_HUB_OFFLINE="1"), "--weights", "org/model")
    assert len(hub.requests) == before  # not one request: everything came from the cache
    code, local, _ = gencli_inprocess(capsys, "sample", "charrnn", "--length", "40", "--seed", "3",
                                      "--weights", str(tiny_run))
    assert code == 0 and text.decode() == local  # the same weights give the same text


def test_offline_with_a_cold_cache_is_one_clear_line(hub, tiny_run: Path, tmp_path: Path) -> None:
    hub.add_repo("org/model", run_files(tiny_run))
    process = run_gencli("sample", "charrnn", "--weights", "org/model",
                         env=hub_env(hub, tmp_path / "cold", HF_HUB_OFFLINE="1"))
    assert process.returncode == 1 and process.stdout == b""
    assert_one_error_line(process.stderr, "org/model is not in the local Hub cache and HF_HUB_OFFLINE is set",
                          "gencli download org/model")
    assert hub.requests == []


# ---- sampling straight from the Hub -----------------------------------------------------------------


def test_sample_by_branch_and_by_pinned_commit(hub, tiny_run: Path, tmp_path: Path) -> None:
    first = hub.add_repo("org/model", run_files(tiny_run))
    second = hub.add_repo("org/model", {"model.safetensors": other_weights(tiny_run)})
    env = hub_env(hub, tmp_path / "hf")
    latest = sample(env, "--weights", "org/model")
    pinned = sample(env, "--weights", f"org/model@{first}")
    assert latest != pinned  # main moved on to the second commit; the pin did not
    # The files of one sample all come from one commit: the one the branch named when it started.
    resolved = [path for method, path in hub.requests if method == "GET" and "model.safetensors" in path]
    assert resolved == [f"/org/model/resolve/{second}/model.safetensors",
                        f"/org/model/resolve/{first}/model.safetensors"]
    by_flag = run_gencli("download", "org/model", "--revision", first, env=env)
    assert by_flag.returncode == 0 and by_flag.stdout.decode().startswith(f"org/model@{first} -> ")


def test_revision_flag_and_at_revision_reach_the_download(capsys, monkeypatch, tiny_run: Path) -> None:
    from gencli import hub as hub_module

    asked: list[tuple[str, str | None]] = []

    def fake_download(repo_id: str, revision: str | None, *, quiet: bool = False):
        asked.append((repo_id, revision))
        return tiny_run, revision or "b" * 40

    monkeypatch.setattr(hub_module, "download_repo", fake_download)
    sha = "a" * 40
    for args in (["--weights", "org/model", "--revision", sha], ["--weights", f"org/model@{sha}"],
                 ["--weights", f"org/model@{sha}", "--revision", sha], ["--weights", "org/model"]):
        code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--length", "5", *args)
        assert code == 0, err
    assert asked == [("org/model", sha)] * 3 + [("org/model", None)]
    out = tiny_run.parent / "hub-sample.txt"
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--length", "5", "--weights", f"org/model@{sha}",
                                   "-o", str(out))
    assert code == 0, err
    assert json.loads(out.with_name(out.name + ".json").read_text())["weights"] == f"hub:org/model@{sha}"


@pytest.mark.parametrize(("setup", "weights", "extra", "code", "message"), [
    ({"org/cfgonly": {"config.json": b'{"gencli_plugin": "charrnn"}'}}, "org/cfgonly", [], 1,
     "Hub repo org/cfgonly has no model.safetensors"),
    ({}, "org/absent", [], 1, "--weights org/absent: no such local folder, and Hub repo org/absent not found"),
    ({"org/model": None}, "org/model", ["--revision", "no-such-branch"], 1, "has no revision 'no-such-branch'"),
    ({"org/model": None}, "org/model@0123abcd", [], 2, "looks like a short commit hash"),
    ({"org/model": None}, "org/model@main", ["--revision", "other"], 2, "two revisions given"),
])
def test_hub_problems_are_one_clear_line(hub, tiny_run, tmp_path, setup, weights, extra, code, message) -> None:
    for repo, files in setup.items():
        hub.add_repo(repo, files or run_files(tiny_run))
    process = run_gencli("sample", "charrnn", "--weights", weights, *extra, env=hub_env(hub, tmp_path / "hf"))
    assert process.returncode == code and process.stdout == b""
    assert_one_error_line(process.stderr, message)


# ---- interrupted downloads ----------------------------------------------------------------------------


def test_a_dropped_connection_is_retried(hub, tiny_run: Path, tmp_path: Path) -> None:
    hub.add_repo("org/model", run_files(tiny_run))
    hub.interrupt_next_download("model.safetensors", after_bytes=1000)
    home = tmp_path / "hf"
    process = run_gencli("download", "org/model", env=hub_env(hub, home))
    assert process.returncode == 0, process.stderr
    gets = [path for method, path in hub.requests if method == "GET" and path.endswith("model.safetensors")]
    assert len(gets) == 2  # cut off once, then fetched again
    folder = Path(process.stdout.decode().split(" -> ")[1].strip())
    assert (folder / "model.safetensors").read_bytes() == (tiny_run / "model.safetensors").read_bytes()


def test_a_download_killed_midway_recovers_on_the_next_run(hub, tiny_run: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    data = (tiny_run / "model.safetensors").read_bytes()
    commit = hub.add_repo("org/model", run_files(tiny_run))
    home = tmp_path / "hf"
    env = hub_env(hub, home)
    # The first GET goes silent after 1,000 bytes, so the kill below lands mid-download however fast the machine
    # (a dropped connection is resumed at once, and the whole download could finish before the kill).
    hub.stall("model.safetensors", after_bytes=1000, times=1)
    process = subprocess.Popen([sys.executable, "-m", "gencli", "download", "org/model"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(m == "GET" and p.endswith("model.safetensors") for m, p in list(hub.requests)):
        assert process.poll() is None and time.monotonic() < deadline, "download never started"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # killed in the middle of the download: Ctrl-C, OOM killer, power
    process.wait()
    snapshot = home / "hub" / "models--org--model" / "snapshots" / commit
    assert not (snapshot / "model.safetensors").exists()

    again = run_gencli("download", "org/model", env=env)
    assert again.returncode == 0, again.stderr
    assert (snapshot / "model.safetensors").read_bytes() == data
    offline = run_gencli("download", "org/model", env=hub_env(hub, home, HF_HUB_OFFLINE="1"))
    assert offline.returncode == 0, offline.stderr  # the cache is complete and consistent
