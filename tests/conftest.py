"""Shared fixtures: run the real CLI in a subprocess, and a tiny trained charrnn run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib leaves tests/ off sys.path

# One torch thread in each test process (this file loads first in every xdist worker, before the plugins'
# tests import torch): `pytest -n 2` already fills both cores, and more OpenMP threads than cores made small
# in-process tests wait on each other, up to 50x slower when the machine was busy.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:
    sys.modules["torch"].set_num_threads(1)


def gencli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "HF_"))}
    env.update({"NO_COLOR": "1", "HF_HUB_DISABLE_XET": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def run_gencli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, input: bytes | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """`gencli ARGS` as a user runs it; stdout as bytes, stderr as text."""
    process = subprocess.run([sys.executable, "-m", "gencli", *args], env=env or gencli_env(), cwd=cwd,
                             input=input, capture_output=True, timeout=timeout)
    process.stderr = process.stderr.decode("utf-8", "replace")
    return process


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A charrnn run folder trained for a few steps with the tiny preset (seconds)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    process = run_gencli("train", "charrnn", "--preset", "tiny", "--steps", "6", "--save-every", "3",
                         "--out", str(out), "-q")
    assert process.returncode == 0, process.stderr
    return out
