"""--device auto|cpu|cuda|cuda:N -> a torch.device, with a clear error when the device is not there."""

from __future__ import annotations

import re

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
