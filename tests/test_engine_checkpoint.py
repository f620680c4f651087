"""checkpoint.save / restore in-process, on a two-layer model: failed writes, damaged checkpoints, RNG state."""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path

import pytest

from gencli import checkpoint
from gencli.errors import GencliError


def _model_and_optimizer(seed: int):
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()  # so the optimiser has moments to save
    return model, optimizer


def _same_state(a, b) -> bool:
    import torch

    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_round_trip_restores_weights_optimizer_and_every_rng(tmp_path: Path):
    import numpy as np
    import torch

    model, optimizer = _model_and_optimizer(0)
    torch.manual_seed(11), np.random.seed(12), random.seed(13)
    checkpoint.save(tmp_path, model, optimizer, checkpoint.Snapshot(7, 0.25, {"wall_seconds": 1.5}))
    expected = (torch.rand(3), np.random.rand(3), random.random())

    other, other_optimizer = _model_and_optimizer(1)
    snapshot = checkpoint.restore(tmp_path, other, other_optimizer)
    assert (snapshot.step, snapshot.lr_scale, snapshot.extra, snapshot.note) == (7, 0.25, {"wall_seconds": 1.5}, "")
    assert _same_state(model, other)
    saved, loaded = optimizer.state_dict(), other_optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for index, values in saved["state"].items():
        for key, value in values.items():
            assert torch.equal(value, loaded["state"][index][key])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_disk_full_during_a_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model, optimizer = _model_and_optimizer(0)
    checkpoint.save(tmp_path, model, optimizer, checkpoint.Snapshot(5, 1.0, {}))
    before = (tmp_path / "training_state" / "step-00000005" / "model.safetensors").read_bytes()

    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if "training_state" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(GencliError) as failure:
        checkpoint.save(tmp_path, model, optimizer, checkpoint.Snapshot(10, 1.0, {}))
    message = str(failure.value)
    assert "\n" not in message and "at step 10" in message and "No space left on device" in message
    assert "last good checkpoint (step 5) is kept" in message
    monkeypatch.undo()
    root = tmp_path / "training_state"
    assert json.loads((root / "latest.json").read_text())["step"] == 5
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step-00000005"]  # no partial folder
    assert (root / "step-00000005" / "model.safetensors").read_bytes() == before


def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(tmp_path: Path):
    model, optimizer = _model_and_optimizer(0)
    checkpoint.save(tmp_path, model, optimizer, checkpoint.Snapshot(5, 1.0, {}))
    older, _ = _model_and_optimizer(0)
    older.load_state_dict(model.state_dict())
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    checkpoint.save(tmp_path, model, optimizer, checkpoint.Snapshot(10, 1.0, {}))
    newest = tmp_path / "training_state" / "step-00000010" / "optimizer.safetensors"
    newest.write_bytes(newest.read_bytes()[:40])  # truncated, as by a failing disk

    fresh, fresh_optimizer = _model_and_optimizer(3)
    snapshot = checkpoint.restore(tmp_path, fresh, fresh_optimizer)
    assert snapshot.step == 5 and "step-00000010 is unreadable" in snapshot.note
    assert _same_state(fresh, older)


def test_only_the_newest_two_checkpoints_stay(tmp_path: Path):
    model, optimizer = _model_and_optimizer(0)
    for step in (2, 4, 6, 8):
        checkpoint.save(tmp_path, model, optimizer, checkpoint.Snapshot(step, 1.0, {}))
    names = sorted(p.name for p in (tmp_path / "training_state").glob("step-*"))
    assert names == ["step-00000006", "step-00000008"]
