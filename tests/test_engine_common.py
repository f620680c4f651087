"""Helpers shared by the training-engine tests (test_engine_*.py); this module holds no tests itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import gencli_env, run_gencli

# A tiny charrnn run whose RNG matters (dropout > 0) and that takes about a second of training.
TINY = ("--preset", "tiny", "--dropout", "0.1", "--seq-length", "48")


FAULTY = Path(__file__).with_name("faulty_gencli.py")


def train(out: Path, *args: str, fault: str | None = None, expect: int | None = 0, **env: str):
    """`gencli train charrnn ARGS --out OUT` in a subprocess, with an injected ``fault`` (tests/faulty_gencli.py)
    if given; checks the exit code unless expect is None."""
    argv = ("train", "charrnn", *args, "--out", str(out))
    if fault:
        process = subprocess.run([sys.executable, str(FAULTY), fault, *argv], env=gencli_env(**env),
                                 capture_output=True, timeout=300)
        process.stderr = process.stderr.decode("utf-8", "replace")
    else:
        process = run_gencli(*argv, env=gencli_env(**env))
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
