"""benchmarks/used_by.py runs and accounts for a command's time phase by phase (its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, gencli_env


def test_used_by_benchmark_smoke():
    process = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "used_by.py"), "--only", "charrnn |", "--repeat", "1",
         "--no-torch-variant"],
        env=gencli_env(), capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr
    out = process.stdout
    assert out.startswith("machine: ") and "cores" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("| charrnn \\| wc -c | after |"))
    cells = [cell.strip() for cell in row.strip("|").split(" | ")]
    assert len(cells) == 12 and all(cell != "-" for cell in cells[4:])  # every phase measured
