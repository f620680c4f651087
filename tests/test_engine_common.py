"""Helpers shared by the training-engine tests (test_engine_*.py); this module holds no tests itself."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import gencli_env, run_gencli

# A tiny charrnn run whose RNG matters (dropout > 0) and that takes about a second of training.
TINY = ("--preset", "tiny", "--dropout", "0.1", "--seq-length", "48")


def train(out: Path, *args: str, fault: str | None = None, expect: int | None = 0, **env: str):
    """`gencli train charrnn ARGS --out OUT` in a subprocess; checks the exit code unless expect is None."""
    extra = dict(env)
    if fault:
        extra["GENCLI_FAULT"] = fault
    process = run_gencli("train", "charrnn", *args, "--out", str(out), env=gencli_env(**extra))
    if expect is not None:
        assert process.returncode == expect, f"exit {process.returncode}, expected {expect}:\n{process.stderr}"
    return process


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    import torch

    left, right = weights(a), weights(b)
    assert left.keys() == right.keys()
    different = [name for name in left if not torch.equal(left[name], right[name])]
    assert not different, f"tensors differ bit for bit: {different}"


def same_weights(a: Path, b: Path) -> bool:
    import torch

    left, right = weights(a), weights(b)
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def metric_steps(run_dir: Path) -> list[int]:
    return [row["step"] for row in metrics(run_dir)]


def latest(run_dir: Path) -> int:
    return json.loads((run_dir / "training_state" / "latest.json").read_text())["step"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("gencli: error:")]
