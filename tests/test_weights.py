"""Weights from local run folders and files: every malformed case ends as one clear line, never a traceback.

Malformed weights are made from the session's tiny charrnn run. Pickles are created here only to prove that
gencli refuses them without unpickling.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
from pathlib import Path
from typing import Callable

import pytest
import torch
from conftest import gencli_env, run_gencli
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file
from test_cli import assert_one_error_line, gencli_inprocess

from gencli import files, weights
from gencli.errors import GencliError


def tensors_of(folder: Path) -> dict[str, torch.Tensor]:
    # From bytes, not load_file: load_file memory-maps, and rewriting a mapped file crashes the process.
    return load_safetensors_bytes((folder / "model.safetensors").read_bytes())


def edit_config(folder: Path, change: Callable[[dict], None]) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def poison(value: float) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        tensors = tensors_of(folder)
        tensors["head.bias"][3] = value
        save_file(tensors, folder / "model.safetensors")

    return make


def reshape(folder: Path) -> None:
    tensors = tensors_of(folder)
    tensors["head.bias"] = torch.zeros(7)
    save_file(tensors, folder / "model.safetensors")


def drop_tensor(folder: Path) -> None:
    tensors = tensors_of(folder)
    del tensors["head.bias"]
    tensors["head.extra"] = torch.zeros(2)
    save_file(tensors, folder / "model.safetensors")


def halve_precision(folder: Path) -> None:
    save_file({k: v.half() for k, v in tensors_of(folder).items()}, folder / "model.safetensors")


def truncate(keep: Callable[[int], int]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: keep(len(data))])

    return make


def torch_pickle(legacy: bool) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        state = tensors_of(folder)
        torch.save(state, folder / "model.safetensors", _use_new_zipfile_serialization=not legacy)

    return make


def remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


MALFORMED = {
    "nan": (poison(float("nan")), "tensor head.bias contains NaN or Inf"),
    "inf": (poison(float("-inf")), "tensor head.bias contains NaN or Inf"),
    "unknown-config-key": (lambda f: edit_config(f, lambda c: c.update(attention_heads=4)),
                           "unknown config key(s) attention_heads for charrnn"),
    "other-plugin": (lambda f: edit_config(f, lambda c: c.update(gencli_plugin="pixelrnn")),
                     "weights for plugin 'pixelrnn', not 'charrnn'"),
    "not-gencli-config": (lambda f: edit_config(f, lambda c: c.pop("gencli_plugin")), "not a gencli config"),
    "config-wrong-type": (lambda f: edit_config(f, lambda c: c.update(hidden_size="32")),
                          "hidden_size must be int, not '32'"),
    "config-newer-format": (lambda f: edit_config(f, lambda c: c.update(gencli_format=99)), "upgrade gencli"),
    "config-out-of-bounds": (lambda f: edit_config(f, lambda c: c.update(hidden_size=-5)),
                             "config.json: hidden_size must be"),
    "config-not-json": (lambda f: (f / "config.json").write_text("{not json"), "config.json: not valid JSON"),
    "missing-config": (remove("config.json"), "no config.json"),
    "missing-weights": (remove("model.safetensors"), "no such weights file"),
    "truncated": (truncate(lambda n: n // 2), "truncated"),
    "truncated-header": (truncate(lambda n: 40), "truncated"),
    "empty-file": (truncate(lambda n: 0), "truncated or not a safetensors file (0 bytes)"),
    "pickle-renamed": (torch_pickle(legacy=False), "a pickle/PyTorch checkpoint, not safetensors"),
    "legacy-pickle-renamed": (torch_pickle(legacy=True), "a pickle/PyTorch checkpoint, not safetensors"),
    "not-safetensors": (lambda f: (f / "model.safetensors").write_bytes(b"\x00\x01\x02\x03" * 1024),
                        "not a safetensors file"),
    "wrong-shape": (reshape, "tensor head.bias has shape [7], config.json implies"),
    "missing-tensor": (drop_tensor, "tensors do not match config.json (missing head.bias; unexpected head.extra)"),
    "wrong-dtype": (halve_precision, "is float16, the model expects float32"),
}


@pytest.fixture
def copy_run(tiny_run: Path, tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str = "run") -> Path:
        target = tmp_path / name
        shutil.copytree(tiny_run, target, ignore=shutil.ignore_patterns("training_state"))
        return target

    return copy


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_weights_end_with_one_line_and_exit_code_1(capsys, copy_run, case: str) -> None:
    make, message = MALFORMED[case]
    folder = copy_run(case)
    make(folder)
    code, out, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(folder), "--length", "5")
    assert code == 1 and out == ""
    line = assert_one_error_line(err, message)
    assert str(folder) in line  # the message says which weights are at fault


def test_a_malformed_file_named_directly_is_refused_too(capsys, copy_run) -> None:
    folder = copy_run()
    poison(float("nan"))(folder)
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(folder / "model.safetensors"))
    assert code == 1
    assert_one_error_line(err, "contains NaN or Inf")


@pytest.mark.parametrize("first_bytes", [b"\x80\x02", b"PK"])
def test_a_safetensors_header_length_that_begins_like_a_pickle_still_loads(capsys, copy_run, first_bytes) -> None:
    """The 8-byte header length of a valid file can begin with 0x80 0x02 (640) or "PK" (19,280), the bytes a
    pickle or a zip begins with; the JSON header after it tells them apart. Here the tiny run's header is padded
    with spaces (as the format allows) to such a length, and the model still samples."""
    folder = copy_run()
    path = folder / "model.safetensors"
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    wanted = int.from_bytes(first_bytes.ljust(8, b"\0"), "little")
    assert length <= wanted  # data offsets count from the end of the header, so padding keeps them valid
    path.write_bytes(struct.pack("<Q", wanted) + data[8:8 + length] + b" " * (wanted - length) + data[8 + length:])
    assert path.read_bytes()[:2] == first_bytes
    code, out, _ = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(folder), "--length", "5")
    assert code == 0 and len(out) > 0


def test_refusal_in_a_real_process_and_the_debug_traceback(copy_run) -> None:
    folder = copy_run()
    torch_pickle(legacy=False)(folder)
    plain = run_gencli("sample", "charrnn", "--weights", str(folder))
    assert plain.returncode == 1 and plain.stdout == b""
    assert_one_error_line(plain.stderr, "a pickle/PyTorch checkpoint, not safetensors")
    debug = run_gencli("sample", "charrnn", "--weights", str(folder), env=gencli_env(GENCLI_DEBUG="1"))
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "read_header" in debug.stderr


class _Trap:
    """Unpickling this creates a folder: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_is_refused_without_being_unpickled(capsys, copy_run, tmp_path: Path) -> None:
    folder = copy_run()
    marker = tmp_path / "unpickled"
    torch.save({"head.bias": _Trap(marker)}, folder / "model.safetensors")
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(folder))
    assert code == 1
    assert_one_error_line(err, "pickle")
    assert not marker.exists()


def test_a_run_folder_and_its_safetensors_file_both_load(capsys, tiny_run: Path) -> None:
    by_folder = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--length", "30")
    by_file = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run / "model.safetensors"),
                               "--length", "30")
    assert by_folder[0] == by_file[0] == 0
    assert by_folder[1] == by_file[1] and len(by_folder[1]) > 30


def test_bundled_weights_are_the_default(capsys, monkeypatch, tiny_run: Path, tmp_path: Path) -> None:
    from gencli import registry

    plugin = registry.load("charrnn")
    monkeypatch.setattr(plugin, "bundled_weights", tmp_path / "nothing-here")
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--length", "5")
    assert code == 1
    assert_one_error_line(err, "charrnn has no bundled weights", "gencli train charrnn")

    monkeypatch.setattr(plugin, "bundled_weights", tiny_run)
    path = tmp_path / "out.txt"
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--length", "5", "-o", str(path))
    assert code == 0, err
    assert json.loads((tmp_path / "out.txt.json").read_text())["weights"] == "bundled:charrnn"


# ---- unit level -------------------------------------------------------------------------------------


def test_header_length_beyond_the_format_limit_is_not_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(GencliError, match="not a safetensors file"):
        weights.read_header(path)
    path.write_bytes(struct.pack("<Q", 2) + b"[]")
    with pytest.raises(GencliError, match="unreadable header"):
        weights.read_header(path)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": "nope"}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(GencliError, match="bad header entry for 'w'"):
        weights.read_header(path)


@pytest.mark.parametrize(("value", "hint", "fits"), [
    (3, int, True), (True, int, False), (3.5, int, False), (3, float, True), ("a", str, True), (1, str, False),
    (False, bool, True), (0, bool, False), (None, int | None, True), ("b", "Literal", True), ("z", "Literal", False),
])
def test_config_values_are_checked_against_the_field_types(value, hint, fits) -> None:
    from typing import Literal

    if hint == "Literal":
        hint = Literal["a", "b"]
    assert weights.value_fits(value, hint) is fits


@pytest.mark.parametrize(("source", "local"), [
    ("org/name", False), ("./run", True), ("/abs/run", True), ("~/run", True), ("runs/a/b", True),
    ("x/model.safetensors", True),
])
def test_what_only_a_path_can_mean(source: str, local: bool) -> None:
    assert weights.looks_local(source) is local


def test_atomic_write_gives_ordinary_permissions_and_keeps_existing_ones(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    old = os.umask(0o022)
    try:
        files.atomic_write(path, b"one")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    path.chmod(0o640)
    files.atomic_write(path, b"two")
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_mistyped_local_path_is_not_mistaken_for_a_hub_repo(capsys, monkeypatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network, whatever happens
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", "runs/charnn")
    assert code == 1
    assert_one_error_line(err, "--weights runs/charnn: no such local folder, and", "HF_HUB_OFFLINE")
