"""--threads and the automatic choice of torch's CPU threads (gencli.device)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import gencli_env, run_gencli

from gencli import device
from gencli.errors import UsageError


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_training_gets_only_wholly_free_cores_and_sampling_one() -> None:
    assert device.auto_threads(2, 0.0, "train") == 2
    assert device.auto_threads(2, 0.3, "train") == 1  # anything else running: sharing a core costs 3x
    assert device.auto_threads(2, 5.0, "train") == 1
    assert device.auto_threads(16, 2.5, "train") == 13
    assert device.auto_threads(16, 0.0, "sample") == 1


def test_threads_flag_wins_then_omp_num_threads_then_the_automatic_choice(monkeypatch, restore_threads) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    monkeypatch.setattr(device, "_torch_default", 2)
    monkeypatch.setattr("os.getloadavg", lambda: (1.2, 1.0, 1.0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert device.set_threads(2, cpu, "train") == 2
    assert device.set_threads(None, cpu, "train") == 1  # one core busy elsewhere
    torch.set_num_threads(2)
    assert device.set_threads(None, torch.device("meta"), "sample") == 2  # not the CPU (a GPU run): left alone
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # torch read it at import
    assert device.set_threads(None, cpu, "sample") == 2  # the user's setting is kept
    with pytest.raises(UsageError, match="--threads 0: must be at least 1"):
        device.set_threads(0, cpu, "train")


def test_threads_reach_the_run_and_its_model_card(tmp_path) -> None:
    run = tmp_path / "run"
    env = gencli_env()
    del env["OMP_NUM_THREADS"]
    process = run_gencli("train", "pixelrnn", "--preset", "tiny", "--steps", "1", "--threads", "2", "--out", str(run),
                         "-q", env=env)
    assert process.returncode == 0, process.stderr
    assert json.loads((run / "run.json").read_text())["engine"]["threads"] == 2
    assert "2 CPU thread(s)" in (run / "README.md").read_text()
    refused = run_gencli("sample", "pixelrnn", "--weights", str(run), "--threads", "0", "-o", str(tmp_path / "x.png"))
    line = refused.stderr.strip()
    assert refused.returncode != 0 and "\n" not in line and line.startswith("gencli: error: ")
    assert "--threads" in line and "at least 1" in line
