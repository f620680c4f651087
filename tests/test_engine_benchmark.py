"""benchmarks/engine_overhead.py runs, and its plain PyTorch loop and the engine train identical weights."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, gencli_env


def test_overhead_benchmark_smoke():
    process = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "engine_overhead.py"), "--steps", "4", "--preset", "tiny",
         "--rounds", "1", "--threads", "1"],
        env=gencli_env(), capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr
    out = process.stdout
    assert "plain PyTorch loop:" in out and "gencli engine:" in out and "engine time / plain time:" in out
    # The comparison is fair only if both sides do the same training: same batches, init, optimiser, schedule.
    assert "same final weights bit for bit: yes" in out
