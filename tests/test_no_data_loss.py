"""Nothing of the user's is lost: train --out never takes over a folder of theirs, -o never renames over a pipe,
a device, a read-only file or a sidecar gencli did not write, odd bytes in a path never break a run, a signal
leaves no temporary file behind, and special files are refused as data (issue 21, items 1-4, 8 and 9)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import gencli_env, run_gencli
from test_cli import assert_one_error_line, gencli_inprocess

from gencli import writers
from gencli.errors import UsageError
from gencli.plugin import Images, Text

PROVENANCE = {"plugin": "fake", "weights": "local:x", "weights_sha256": "0" * 64, "seed": 0, "options": {},
              "gencli_version": "0"}
TINY_TRAIN = ("train", "charrnn", "--preset", "tiny", "--steps", "2", "-q")


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every entry under ``folder``: its mode and its content (or a symlink's target)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            found[str(path)] = (info.st_mode, os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            found[str(path)] = (info.st_mode, path.read_bytes())
        else:
            found[str(path)] = (info.st_mode, b"")
    return found


# ---- 1. train --out ------------------------------------------------------------------------------------


def users_project(folder: Path) -> Path:
    """A folder of the user's that shares names with a run folder."""
    (folder / "training_state").mkdir(parents=True)
    for name, text in {"README.md": "# my project\n", "config.json": "{}", "metrics.jsonl": "{}\n",
                       "loss.png": "not a png", "training_state/keep.txt": "precious"}.items():
        (folder / name).write_text(text)
    return folder


def test_train_refuses_a_folder_that_is_not_a_run_and_changes_nothing(tmp_path: Path) -> None:
    project = users_project(tmp_path / "proj")
    before = snapshot(project)
    process = run_gencli(*TINY_TRAIN, "--out", str(project))
    assert process.returncode == 2
    assert_one_error_line(process.stderr, f"--out {project} is not empty and is not a gencli run",
                          "README.md", "train into a new or empty folder")
    assert snapshot(project) == before


def test_train_out_dot_in_a_repository_refuses(capsys, tmp_path: Path, monkeypatch) -> None:
    project = users_project(tmp_path / "repo")
    monkeypatch.chdir(project)
    before = snapshot(project)
    code, _, err = gencli_inprocess(capsys, *TINY_TRAIN, "--out", ".")
    assert code == 2
    assert_one_error_line(err, "--out . is not empty")
    assert snapshot(project) == before


def test_train_into_an_empty_folder_or_a_new_one_works(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_gencli(*TINY_TRAIN, "--out", str(empty)).returncode == 0
    assert (empty / "run.json").is_file() and (empty / "model.safetensors").is_file()
    again = run_gencli(*TINY_TRAIN, "--out", str(empty))  # now it holds a run: --resume, or another folder
    assert again.returncode == 2
    assert_one_error_line(again.stderr, "already holds a run; add --resume")


def test_train_out_naming_a_file_is_refused(capsys, tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    code, _, err = gencli_inprocess(capsys, *TINY_TRAIN, "--out", str(a_file))
    assert code == 2
    assert_one_error_line(err, "exists and is not a folder")
    assert a_file.read_text() == "mine"


# ---- 2. -o and special files ---------------------------------------------------------------------------


def text(*chunks: str) -> Text:
    return Text(iter(chunks))


def read_fifo_in_background(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, received


def test_text_to_a_named_pipe_streams_into_it_and_the_pipe_stays(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    writers.check_destination("text", str(fifo))
    writers.write(text("hello ", "world"), str(fifo), PROVENANCE, default_stem="x")
    reader.join(timeout=10)
    assert received == [b"hello world\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no sidecar, no temporary file


def test_png_to_a_named_pipe_is_written_into_it(tmp_path: Path) -> None:
    import numpy as np

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    writers.check_destination("image", str(fifo))  # no .png suffix needed for a pipe
    writers.write(Images(np.zeros((1, 4, 4, 1), np.uint8)), str(fifo), PROVENANCE, default_stem="x")
    reader.join(timeout=10)
    assert received[0].startswith(b"\x89PNG") and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_device_node_is_written_to_not_replaced(tmp_path: Path) -> None:
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    except PermissionError:
        pytest.skip("making a device node needs root")
    writers.check_destination("text", str(null))
    writers.write(text("gone"), str(null), PROVENANCE, default_stem="x")
    assert stat.S_ISCHR(null.lstat().st_mode) and null.lstat().st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "data" / "out.txt"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "out.txt"
    link.symlink_to(real)
    writers.write(text("new"), str(link), PROVENANCE, default_stem="x")
    assert link.is_symlink() and real.read_text() == "new\n"


def test_a_dangling_symlink_and_other_special_files_are_refused(tmp_path: Path) -> None:
    dangling = tmp_path / "out.txt"
    dangling.symlink_to(tmp_path / "missing.txt")
    with pytest.raises(UsageError, match="a symlink to .*missing.txt, which does not exist"):
        writers.check_destination("text", str(dangling))
    assert not (tmp_path / "missing.txt").exists()
    import socket

    sock_path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock_path))
        with pytest.raises(UsageError, match="not a regular file, pipe or character device"):
            writers.check_destination("image", str(sock_path))


# ---- 3. overwrites -------------------------------------------------------------------------------------


def test_a_read_only_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keep.txt"
    path.write_text("mine")
    path.chmod(0o444)
    for modality, name in (("text", "keep.txt"), ("image", "keep.png")):
        (tmp_path / name).touch()
        (tmp_path / name).chmod(0o444)
        with pytest.raises(UsageError, match="read-only"):
            writers.check_destination(modality, str(tmp_path / name))
    assert path.read_text() == "mine"


def test_replacing_a_text_file_keeps_its_mode_and_a_users_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o600)
    users = tmp_path / ".out.txt.partial"  # the name text output used as its temporary file
    users.write_text("mine")
    writers.write(text("new"), str(path), PROVENANCE, default_stem="x")
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert users.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.txt.partial", "out.txt", "out.txt.json"]


def test_a_sidecar_name_holding_someone_elses_file_is_refused_before_any_work(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    theirs = tmp_path / "notes.txt.json"
    theirs.write_text('{"my": "settings"}')
    with pytest.raises(UsageError, match="notes.txt.json, which exists and was not written by gencli"):
        writers.check_destination("text", str(notes))
    assert theirs.read_text() == '{"my": "settings"}' and not notes.exists()
    # gencli's own sidecar is simply replaced with the new provenance
    theirs.write_text(json.dumps(PROVENANCE))
    writers.check_destination("text", str(notes))
    writers.write(text("x"), str(notes), {**PROVENANCE, "seed": 7}, default_stem="x")
    assert json.loads(theirs.read_text())["seed"] == 7


# ---- 4. bytes that are not UTF-8 -----------------------------------------------------------------------


def test_non_utf8_paths_train_resume_and_record_a_rerunnable_command(tmp_path: Path) -> None:
    data = tmp_path / "caf\udce9.txt"  # the byte 0xE9 alone, as a Latin-1 file name holds it
    data.write_text("the quick brown fox jumps over the lazy dog. " * 20)
    out = tmp_path / "run_\udcff"
    first = run_gencli(*TINY_TRAIN, "--data", str(data), "--out", str(out))
    assert first.returncode == 0, first.stderr
    card = (out / "README.md").read_bytes().decode("utf-8")  # valid UTF-8
    assert "--data " + f"$'{tmp_path}/caf\\xe9.txt'" in card
    assert json.loads((out / "run.json").read_text())["data"] == str(data)  # round-trips exactly
    resumed = run_gencli("train", "charrnn", "--out", str(out), "--resume", "--steps", "4", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert "--resume --steps 4" in (out / "README.md").read_text(encoding="utf-8")
    # The command the card records reruns in bash as written (the $'...' quoting brings the bytes back).
    recorded = next(line for line in card.splitlines() if line.startswith("gencli train"))
    listing = subprocess.run(["bash", "-c", "printf '%s\\n' " + recorded.removeprefix("gencli train charrnn ")],
                             capture_output=True)
    assert os.fsencode(str(data)) in listing.stdout.split(b"\n")


# ---- 8. signals ----------------------------------------------------------------------------------------


def wait_for(process: subprocess.Popen, predicate, timeout: float = 60) -> None:
    """Poll until ``predicate()``; a process that ends first, or a timeout, fails the test (and is killed)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"the condition never held (exit {process.returncode}): {stderr[-2000:]}")
        time.sleep(0.05)


def test_sigterm_during_training_checkpoints_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "gencli", "train", "charrnn", "--preset", "tiny",
                                "--steps", "1000000", "--log-every", "5", "--out", str(out)],
                               env=gencli_env(), stderr=subprocess.PIPE, text=True)
    wait_for(process, lambda: (out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text().strip())
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "terminated at step" in stderr
    assert (out / "training_state" / "latest.json").is_file()


def test_sigterm_during_a_text_sample_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    process = subprocess.Popen([sys.executable, "-m", "gencli", "sample", "charrnn", "--length", "10000000",
                                "-o", str(out)], env=gencli_env(), stderr=subprocess.PIPE, text=True)
    # writing has begun: the temporary file is there (or, before the fix, its fixed name .out.txt.partial)
    wait_for(process, lambda: any(p.name.startswith(".out.txt") for p in tmp_path.iterdir()))
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "gencli: terminated"
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_waiting_for_a_peer_node_is_quiet_and_claims_no_checkpoint(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a free port for the rendezvous no peer will ever join
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "gencli", "train", "charrnn", "--preset", "tiny",
                                "--nnodes", "2", "--nproc", "1", "--rdzv-endpoint", f"127.0.0.1:{port}",
                                "--out", str(out)], env=gencli_env(), stderr=subprocess.PIPE, text=True)
    wait_for(process, lambda: (out / "run.json").is_file())
    time.sleep(3)  # torchrun is up and waiting for the second node
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert_one_error_line(stderr, "interrupted before the first checkpoint; nothing to keep")
    assert not (out / "training_state").exists()


# ---- 9. special files as data --------------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["charrnn", "pixelrnn", "wavenet"])
def test_a_pipe_or_device_as_data_is_refused_at_once(capsys, tmp_path: Path, plugin: str) -> None:
    fifo = tmp_path / "data.txt"
    os.mkfifo(fifo)
    for source in (str(fifo), "/dev/zero"):
        code, _, err = gencli_inprocess(capsys, "train", plugin, "--steps", "1", "--data", source,
                                        "--out", str(tmp_path / "run"))
        assert code == 2
        assert_one_error_line(err, f"--data {source}: not a regular file or folder")
    assert not (tmp_path / "run").exists()


# ---- nothing escapes -----------------------------------------------------------------------------------


def test_train_sample_push_and_download_write_only_inside_their_folders(tmp_path: Path) -> None:
    """Every path the commands write, create, rename or remove (seen through Python's audit hooks) lies in the
    temporary folder that holds the working folder, HOME (caches) and TMPDIR."""
    from hubserver import LoopbackHub

    work, home, scratch, log = tmp_path / "work", tmp_path / "home", tmp_path / "tmp", tmp_path / "written.log"
    for folder in (work, home, scratch):
        folder.mkdir()
    env = {k: v for k, v in gencli_env().items() if not k.startswith(("XDG_", "NUMBA_"))}
    env.update(HOME=str(home), TMPDIR=str(scratch), HF_TOKEN="hf_loopback_dummy_token",
               # torch's compile cache follows TMPDIR, but once, in a full parallel suite run, it made
               # /tmp/torchinductor_root (an empty folder, not reproduced alone): pinned here, and open in the notes.
               TORCHINDUCTOR_CACHE_DIR=str(scratch / "torchinductor"))
    auditor = Path(__file__).with_name("audited_gencli.py")
    commands = [
        ("train", "charrnn", "--preset", "tiny", "--steps", "2", "--out", "run", "-q"),
        ("sample", "charrnn", "--weights", "run", "--length", "20", "-o", "text.txt"),
        ("sample", "gan", "-n", "4", "-o", "grid.png"),
        ("sample", "wavenet", "--seconds", "0.05", "-o", "clip.wav"),
        ("push", "run", "org/tiny"),
        ("download", "org/tiny"),
        ("sample", "charrnn", "--weights", "org/tiny", "--length", "20", "-o", "hub.txt"),
    ]
    with LoopbackHub() as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        for args in commands:
            process = subprocess.run([sys.executable, str(auditor), str(log), *args], cwd=work, env=env,
                                     capture_output=True, text=True, timeout=300)
            assert process.returncode == 0, (args, process.stderr)
    written = set(log.read_text().splitlines())
    assert any(path.startswith(str(home / ".cache" / "huggingface")) for path in written)  # the hook sees writes
    assert {str(work / name) for name in ("text.txt", "grid.png", "clip.wav", "hub.txt")} <= written
    outside = sorted(path for path in written if not path.startswith(str(tmp_path) + os.sep) and path != os.devnull)
    assert outside == []
