"""benchmarks/rbm_vs_sklearn.py runs and names the machine it ran on, in its table and its JSON (figures unchecked)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, gencli_env


def run_benchmark(*flags: str) -> tuple[list[str], dict]:
    process = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "rbm_vs_sklearn.py"), "--hidden", "8", "--epochs", "1",
         "--ais-runs", "2", "--ais-betas", "10", "--repeats", "1", "--gencli-precisions", "fp32",
         "--sklearn-dtypes", "float32", *flags],
        env=gencli_env(), capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr
    lines = process.stdout.splitlines()
    return lines, json.loads(lines[-1])


def test_the_table_and_the_json_carry_the_machine_and_the_avx2_cap() -> None:
    lines, report = run_benchmark("--avx2-only")
    machine = report["machine"]
    assert machine["cpu"] and machine["cores"] >= 1
    assert set(machine["isa"]) == {"AVX2", "FMA", "AVX-512", "AVX-512 BF16", "AMX"}
    assert machine["torch"]["version"] and machine["torch"]["threads"] == 1  # the benchmark's --threads 1
    assert machine["numba"]["version"] and machine["numba"]["threads"] >= 1
    assert lines[0].startswith(f"machine: {machine['cpu']}, {machine['cores']} cores")
    assert "AVX-512 BF16" in lines[0] and "torch " in lines[0] and "numba " in lines[0]
    assert [row["model"] for row in report["results"]] == ["gencli rbm (fp32)", "sklearn BernoulliRBM (float32)"]
    assert all(row["cpu_seconds_per_epoch"] > 0 for row in report["results"])
    # --avx2-only: every library capped before it loaded, so no native bf16 and auto means fp32
    assert machine["caps"]["ONEDNN_MAX_CPU_ISA"] == "AVX2" and machine["caps"]["ATEN_CPU_CAPABILITY"] == "avx2"
    assert machine["caps"]["NUMBA_CPU_NAME"] == "haswell"  # gencli's fp32 kernels compiled without AVX-512 too
    assert machine["torch"]["cpu_capability"] in ("AVX2", "DEFAULT")  # DEFAULT: a CPU without AVX2 at all
    assert not machine["native_bf16"] and report["precision_auto"] == "fp32"
    assert "caps: ATEN_CPU_CAPABILITY=avx2" in lines[0]
