"""The machine a benchmark ran on, as every script in benchmarks/ prints it, in its table and in its JSON.

A speed figure means little without the CPU it came from: the RBM's bf16 path is twice as fast as fp32 where the
CPU has AVX512-BF16 and ten times slower where it has only AVX2 (issue 22). So each benchmark records the CPU
model and cores, the instruction-set extensions that decide which kernels torch and numba run (AVX2, AVX-512,
AVX-512 BF16, AMX), the ISA caps a user can set on the libraries (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``,
...; see ``--help`` of rbm_vs_sklearn.py for simulating an AVX2-only CPU), torch's, numba's and numpy's BLAS
versions and threads, and the load average (the machine may be shared).

    from machine import describe, summary     # benchmarks/ is the script's folder, so this imports directly
    print(summary(describe()))                # one line above the table
    json.dumps({..., "machine": describe()})  # the same facts in the JSON
"""

from __future__ import annotations

import os
import platform
from typing import Any

from gencli.device import usable_cores
from gencli.precision import cpu_bf16, cpu_flags, cpu_model

# (label, /proc/cpuinfo flags any of which means it): the extensions that change the speed of the kernels here.
EXTENSIONS = (("AVX2", ("avx2",)), ("FMA", ("fma",)), ("AVX-512", ("avx512f",)),
              ("AVX-512 BF16", ("avx512_bf16",)), ("AMX", ("amx_bf16", "amx_tile")))
# Library settings that cap the instruction set or the threads; set, they change every figure.
CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "FBGEMM_ENABLE_INSTRUCTIONS",
        "OPENBLAS_CORETYPE", "NUMBA_CPU_NAME", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
        "NUMBA_NUM_THREADS")


def describe() -> dict[str, Any]:
    """The machine as a JSON-ready dict (imports torch and numba to ask them)."""
    flags = cpu_flags()
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "arch": platform.machine(),
        "isa": {label: any(flag in flags for flag in names) for label, names in EXTENSIONS},
        "native_bf16": cpu_bf16().native,
        "caps": {name: os.environ[name] for name in CAPS if os.environ.get(name)},
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    import torch

    info["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads(),
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    try:
        import numba

        info["numba"] = {"version": numba.__version__, "threads": numba.config.NUMBA_NUM_THREADS}
    except ImportError:
        info["numba"] = None
    info["blas"] = _blas()
    return info


def _blas() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries loaded in this process, with their threads (threadpoolctl, where present)."""
    try:
        import numpy  # noqa: F401  (loads numpy's BLAS, which scikit-learn uses)
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def summary(info: dict[str, Any]) -> str:
    """One line for the top of a table: CPU, cores, ISA, caps, libraries and threads, load."""
    isa = ", ".join(f"{label} {'yes' if present else 'no'}" for label, present in info["isa"].items())
    caps = " ".join(f"{k}={v}" for k, v in info["caps"].items()) or "none"
    torch_info = info["torch"]
    numba_info = info["numba"]
    numba_text = f"numba {numba_info['version']} ({numba_info['threads']} threads)" if numba_info else "no numba"
    blas = "; ".join(f"{b['internal_api']} {b['version']} {b['architecture']} ({b['num_threads']} threads)"
                     for b in info["blas"])
    load = " / ".join(f"{x:.1f}" for x in info["load_average"]) if info["load_average"] else "?"
    return (f"machine: {info['cpu']}, {info['cores']} cores ({info['arch']}); {isa}; caps: {caps}; "
            f"torch {torch_info['version']} ({torch_info['threads']} threads, {torch_info['cpu_capability']} "
            f"kernels), {numba_text}, numpy BLAS {blas or '?'}; load average {load}")
