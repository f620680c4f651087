"""--device auto|cpu|cuda|cuda:N -> a torch.device, with a clear error when the device is not there; and --threads,
torch's CPU threads for the machine and the workload (``set_threads``)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from gencli.errors import UsageError


def resolve_device(spec: str | None):
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not match:
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: no CUDA GPU is available here (torch {torch.__version__}); use --device cpu")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device("cuda", index)


def seed_everything(seed: int) -> None:
    """Seed every RNG a plugin might draw from, so the same seed gives the same output."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---- CPU threads ------------------------------------------------------------------------------------------------
#
# Why not torch's default (one thread per core): the models here are small, so a step is many short kernels,
# and each kernel with two threads ends at a barrier where one thread waits for the other. On an idle 2-core
# machine that still pays (PixelCNN training: 150 against 100 images/s), but as soon as another process
# holds one core the waiting thread is descheduled and every barrier stalls: 36-60 against 107-112 images/s
# beside one busy process, 6.3 against 50.8 at a load average of 3 to 8 (benchmarks/threads.py). Losing 3x or
# more under load costs more than the 1.5x gained when idle, and a run of minutes outlives the quiet moment it
# started in, so threads go only to cores that are wholly free when it starts.


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota when there is one."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def auto_threads(cores: int, load: float, workload: str) -> int:
    """Intra-op threads for ``workload`` ("train" or "sample") on ``cores`` CPUs whose one-minute load average
    (other processes' runnable threads; this command has not run yet) is ``load``.

    Training gets one thread per wholly free core (a core with any other load left to it: sharing one costs 3x),
    so a 2-core machine trains on one thread unless nothing else at all runs. Sampling gets one: most samplers
    here are long chains of small per-pixel or per-sample steps that a second thread cannot share, and the
    rest (one pass of a GAN or VAE decoder) take milliseconds either way (benchmarks/threads.py).
    """
    if workload == "sample":
        return 1
    return max(1, min(cores, math.floor(cores - load)))


_torch_default: int | None = None  # torch's own choice (one per physical core), read on first use


def set_threads(requested: int | None, device: Any, workload: str) -> int:
    """Set torch's intra-op CPU threads for this command and return the number in force.

    ``requested`` (``--threads``) wins; else an ``OMP_NUM_THREADS`` the user set is kept (torch read it at
    import); else ``auto_threads`` decides. On a GPU the CPU only feeds it, so only ``--threads`` changes it.
    """
    import os

    import torch

    global _torch_default
    if _torch_default is None:  # before any change, so a second command in one process starts from the same
        _torch_default = torch.get_num_threads()
    if requested is not None:
        if requested < 1:
            raise UsageError(f"--threads {requested}: must be at least 1")
        torch.set_num_threads(requested)
    elif not os.environ.get("OMP_NUM_THREADS") and getattr(device, "type", "cpu") == "cpu":
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        torch.set_num_threads(min(_torch_default, auto_threads(usable_cores(), load, workload)))
    return torch.get_num_threads()
