"""--precision auto|fp32|bf16: the dtype a training run's matmuls use, and whether this CPU computes bf16 natively.

On a CPU, bf16 pays only where the hardware multiplies it: AVX512-BF16 or AMX on x86, the BF16 extension on Arm.
Elsewhere oneDNN emulates it, and the RBM's bf16 step ran ten times slower than its fp32 one on an AVX2-only
AMD EPYC (issue 22). So ``auto`` picks bf16 on a CPU only where the CPU has it natively and the plugin declares
``supports_bf16 = True`` (it was checked to train as well in bf16); an explicit ``--precision bf16`` is obeyed
everywhere, with one warning that gives the slowdown measured on this machine.

The capability check reads the CPU's flags (no timing, no torch import): cheap at start-up. The slowdown in the
warning is timed once per machine and library set-up and kept in ``$XDG_CACHE_HOME/gencli/precision.json``.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# x86 flags (Linux /proc/cpuinfo names) and the Arm feature that mean bf16 dot products in hardware.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
ARM_BF16_FEATURE = "bf16"
# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) that stop below its native-bf16 kernels: a cap the user set wins.
ONEDNN_BELOW_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
TIMED_SHAPE = (128, 512, 512)  # (rows, inner, columns) of the timed matmul: a small model's layer


@dataclass(frozen=True)
class Bf16Support:
    native: bool
    detail: str  # what the answer rests on, for the run's records


@dataclass(frozen=True)
class Precision:
    name: str  # "fp32" or "bf16": what the run's autocast does
    reason: str  # one line, recorded in run.json and the model card
    warning: str = ""  # shown once at the start of the run when not empty


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is not there)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> Bf16Support:
    """Whether this CPU computes bf16 matmuls in hardware, as the libraries in force will use it."""
    flags = cpu_flags()
    found = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if platform.machine().lower() in ("aarch64", "arm64") and ARM_BF16_FEATURE in flags:
        found.append(ARM_BF16_FEATURE)
    if not found:
        return Bf16Support(False, f"{cpu_model()} has no {', '.join(NATIVE_BF16_FLAGS)}")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).strip().upper()
    if cap in ONEDNN_BELOW_BF16:
        return Bf16Support(False, f"{cpu_model()} has {', '.join(found)}, but ONEDNN_MAX_CPU_ISA={cap} keeps "
                                  "oneDNN from it")
    return Bf16Support(True, f"{cpu_model()} has {', '.join(found)}")


def resolve(requested: str, device_type: str, plugin: Any) -> Precision:
    """What ``--precision requested`` means for ``plugin`` on a ``device_type`` ("cpu" or "cuda") device.

    ``plugin.supports_bf16``: False never autocasts; True lets ``auto`` pick bf16 on a CPU with native bf16;
    absent (undeclared) autocasts under an explicit bf16 and under ``auto`` on CUDA only, and then
    ``plugin.cpu_fp32_reason`` (optional) says in the recorded reason why ``auto`` stays in fp32 on a CPU."""
    supports = getattr(plugin, "supports_bf16", None)
    if requested == "fp32":
        return Precision("fp32", "--precision fp32")
    if supports is False:
        return Precision("fp32", f"{plugin.name} trains in fp32 only (supports_bf16 = False)")
    if device_type == "cuda":
        return Precision("bf16", f"--precision {requested}: bf16 autocast on CUDA")
    support = cpu_bf16()
    if requested == "bf16":
        if support.native:
            return Precision("bf16", f"--precision bf16; {support.detail}")
        slower = bf16_slowdown()
        return Precision("bf16", f"--precision bf16 without native bf16 ({support.detail})",
                         f"--precision bf16 on a CPU without native bf16 ({support.detail}): bf16 matmuls measured "
                         f"{slower:.1f}x slower than fp32 here; --precision auto or fp32 trains faster")
    if supports is not True:
        # A plugin may say why it keeps fp32 on a CPU (``cpu_fp32_reason``), e.g. fp32 kernels faster than bf16 matmuls.
        why = getattr(plugin, "cpu_fp32_reason", "") or f"{plugin.name} does not declare supports_bf16 = True"
        return Precision("fp32", f"auto on the CPU: fp32 ({why})")
    if not support.native:
        return Precision("fp32", f"auto on the CPU: fp32 ({support.detail})")
    return Precision("bf16", f"auto on the CPU: bf16 ({support.detail}; {plugin.name} supports bf16)")


# ---- the measured slowdown --------------------------------------------------------------------------------------


def cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gencli" / "precision.json"


def setup_key() -> str:
    """What the timing depends on: the CPU, torch, and the library ISA caps a user may set."""
    import torch

    caps = ",".join(f"{name}={os.environ[name]}" for name in
                    ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
                    if os.environ.get(name))
    return f"{cpu_model()} | torch {torch.__version__} | {caps or 'no caps'}"


def bf16_slowdown() -> float:
    """bf16 matmul time / fp32 matmul time on this machine, timed once (about 50 ms) and then read back."""
    path, key = cache_file(), setup_key()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), (int, float)):
        return float(known[key])
    ratio = time_bf16_against_fp32()
    known[key] = round(ratio, 2)
    try:
        from gencli.files import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(known, indent=1, sort_keys=True) + "\n").encode())
    except OSError:
        pass  # an unwritable cache costs the timing again next run, nothing else
    return ratio


def time_bf16_against_fp32(repeats: int = 3) -> float:
    import torch

    rows, inner, columns = TIMED_SHAPE
    generator = torch.Generator().manual_seed(0)
    left, right = torch.rand(rows, inner, generator=generator), torch.rand(inner, columns, generator=generator)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = left.to(dtype), right.to(dtype)
        a @ b  # the first call sets up the kernel
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - started)
        best[dtype] = min(times)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)
