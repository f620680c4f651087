"""--precision: auto picks bf16 only on a CPU with native bf16 and for a plugin that declares it; an explicit bf16
without it warns once with the measured slowdown; run.json and the model card record the choice."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import gencli_env, run_gencli
from gencli import precision
from gencli.precision import Bf16Support

NATIVE = Bf16Support(True, "test CPU has avx512_bf16")
EMULATED = Bf16Support(False, "test CPU has no avx512_bf16, amx_bf16")


def plugin(supports: bool | None) -> SimpleNamespace:
    declared = SimpleNamespace(name="toy")
    if supports is not None:
        declared.supports_bf16 = supports
    return declared


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Set what the capability check says; the slowdown timing writes into a private cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def says(support: Bf16Support) -> None:
        monkeypatch.setattr(precision, "cpu_bf16", lambda: support)

    return says


@pytest.mark.parametrize("support, supports, expected", [
    (EMULATED, True, "fp32"),  # the plugin could, the CPU cannot
    (NATIVE, True, "bf16"),
    (NATIVE, None, "fp32"),  # undeclared: not checked in bf16, so auto keeps fp32 on a CPU
    (NATIVE, False, "fp32"),
])
def test_auto_on_the_cpu(cpu, support: Bf16Support, supports: bool | None, expected: str) -> None:
    cpu(support)
    chosen = precision.resolve("auto", "cpu", plugin(supports))
    assert chosen.name == expected and not chosen.warning
    assert ("auto on the CPU" in chosen.reason) or "supports_bf16 = False" in chosen.reason


def test_auto_on_cuda_and_explicit_choices(cpu) -> None:
    cpu(EMULATED)
    assert precision.resolve("auto", "cuda", plugin(None)).name == "bf16"
    assert precision.resolve("auto", "cuda", plugin(False)).name == "fp32"
    assert precision.resolve("fp32", "cpu", plugin(True)).name == "fp32"
    assert precision.resolve("bf16", "cpu", plugin(False)).name == "fp32"
    cpu(NATIVE)
    native = precision.resolve("bf16", "cpu", plugin(None))
    assert native.name == "bf16" and not native.warning


def test_explicit_bf16_without_native_support_warns_with_the_measured_slowdown(cpu, monkeypatch) -> None:
    cpu(EMULATED)
    timings = []
    monkeypatch.setattr(precision, "time_bf16_against_fp32", lambda: timings.append(1) or 9.64)
    chosen = precision.resolve("bf16", "cpu", plugin(True))
    assert chosen.name == "bf16"
    assert "measured 9.6x slower than fp32" in chosen.warning and "test CPU has no avx512_bf16" in chosen.warning
    # Timed once per machine set-up, then read from the cache.
    assert precision.resolve("bf16", "cpu", plugin(True)).warning == chosen.warning
    assert timings == [1]
    assert list(json.loads(precision.cache_file().read_text()).values()) == [9.64]


def test_capability_check_reads_the_flags_and_honours_a_onednn_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    try:
        monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
        precision.cpu_bf16.cache_clear()
        assert not precision.cpu_bf16().native
        monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
        precision.cpu_bf16.cache_clear()
        assert precision.cpu_bf16().native and "avx512_bf16" in precision.cpu_bf16().detail
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
        precision.cpu_bf16.cache_clear()
        assert not precision.cpu_bf16().native and "ONEDNN_MAX_CPU_ISA=AVX2" in precision.cpu_bf16().detail
    finally:
        precision.cpu_bf16.cache_clear()


def test_the_time_ratio_is_a_real_measurement() -> None:
    assert precision.time_bf16_against_fp32(repeats=1) > 0


def train_tiny(tmp_path: Path, name: str, *flags: str) -> tuple[str, dict, str]:
    """`gencli train rbm --preset tiny` on a CPU whose oneDNN is capped at AVX2 (so: no native bf16, whatever
    this machine has); returns (stderr, run.json, model card)."""
    out = tmp_path / name
    env = gencli_env(ONEDNN_MAX_CPU_ISA="AVX2", XDG_CACHE_HOME=str(tmp_path / "cache"))
    process = run_gencli("train", "rbm", "--preset", "tiny", "--steps", "4", "--device", "cpu", "--threads", "1",
                         "--out", str(out), *flags, env=env)
    assert process.returncode == 0, process.stderr
    return process.stderr, json.loads((out / "run.json").read_text()), (out / "README.md").read_text()


def test_explicit_bf16_warns_once_and_the_run_records_it(tmp_path: Path) -> None:
    stderr, run, card = train_tiny(tmp_path, "bf16", "--precision", "bf16")
    warnings = [line for line in stderr.splitlines() if "without native bf16" in line]
    assert len(warnings) == 1 and warnings[0].startswith("gencli: warning: ") and "x slower than fp32" in warnings[0]
    assert run["engine"]["precision"] == "bf16" and run["resolved"]["precision"] == "bf16"
    assert "- precision: bf16 (--precision bf16 without native bf16" in card


def test_auto_trains_in_fp32_without_native_bf16_and_says_so(tmp_path: Path) -> None:
    stderr, run, card = train_tiny(tmp_path, "auto")
    assert "bf16" not in stderr
    assert run["engine"]["precision"] == "auto" and run["resolved"]["precision"] == "fp32"
    reason = run["resolved"]["precision_reason"]
    assert reason.startswith("auto on the CPU: fp32 (") and f"- precision: fp32 ({reason})" in card
