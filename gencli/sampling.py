"""`gencli sample`: weights -> model -> plugin.sample -> writer, with provenance.

On the CPU a plugin may offer a torch-free path (``OptionalMembers.numpy_sampler``): the same weights checks,
the weights as numpy arrays, the plugin's numpy sampler, the same writers and provenance, and no torch import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from gencli import writers
from gencli.errors import UsageError
from gencli.plugin import NumpySampler, SampleRequest


def _plain(value: Any) -> Any:
    """A JSON-ready option value: paths as strings, lists item by item."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def provenance_of(plugin: Any, loaded: Any, seed: int, options: Any) -> dict[str, Any]:
    from gencli import __version__

    return {
        "plugin": plugin.name,
        "weights": loaded.source.id,
        "weights_sha256": loaded.sha256,
        "seed": seed,
        "options": {k: _plain(v) for k, v in dataclasses.asdict(options).items()},
        "gencli_version": __version__,
    }


class SampleProgress:
    """The progress hook handed to plugins: a rich bar at a terminal (with samples/s and, for real-time
    output, the real-time factor), one summary line otherwise, nothing with -q."""

    def __init__(self, *, quiet: bool, description: str) -> None:
        self.quiet, self.description = quiet, description
        self.started = time.perf_counter()
        self.done, self.total, self.realtime_rate = 0, 0, None
        self._bar: Any = None
        self._closed = False

    def update(self, done: int, total: int, *, realtime_rate: float | None = None) -> None:
        if done == 0:  # the plugin says generation proper starts now (after set-up or compilation)
            self.started = time.perf_counter()
        self.done, self.total, self.realtime_rate = done, total, realtime_rate
        if self.quiet or not sys.stderr.isatty():
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), redirect_stdout=False, redirect_stderr=False,
                                 transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total, speed="")
        self._bar.update(self._task, completed=done, total=total, speed=self.speed_text())

    def speed_text(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        text = f"{self.done / elapsed:,.0f}/s"
        if self.realtime_rate:
            text += f", real-time factor {elapsed / max(self.done / self.realtime_rate, 1e-9):.2f}"
        return text

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
        if not self.quiet and self.done:
            elapsed = time.perf_counter() - self.started
            print(f"{self.description}: {self.done:,} in {elapsed:.2f} s ({self.speed_text()})", file=sys.stderr)


def run_sample(plugin: Any, options: Any, *, output: str | None, n: int, seed: int, weights: str | None,
               revision: str | None, device: str, quiet: bool, threads: int | None = None, scale: int = 1,
               strip: bool = False) -> None:
    if n < 1:
        raise UsageError("-n must be at least 1")
    writers.check_destination(plugin.modality, output, strip=strip)  # fail before loading anything
    sampler = load_sampler(plugin, options, weights=weights, revision=revision, device=device, threads=threads,
                           quiet=quiet)
    sampler.reseed(seed)
    provenance = provenance_of(plugin, sampler.loaded, seed, options)
    progress = SampleProgress(quiet=quiet, description=f"sample {plugin.name}")
    try:
        with sampler.inference():
            result = sampler.generate(SampleRequest(n, seed, sampler.target, progress=progress.update))
            progress.close()
            # Text streams lazily, so writing happens inside inference mode too.
            written = writers.write(result, output, provenance, default_stem=plugin.name, scale=scale, strip=strip)
    finally:
        progress.close()
    if not quiet and written != ["-"]:
        print(f"wrote {', '.join(written)}", file=sys.stderr)


@dataclasses.dataclass
class Sampler:
    """Loaded weights ready to sample: the plugin's torch model, or its torch-free ``numpy_path`` and arrays."""

    plugin: Any
    options: Any
    loaded: Any  # gencli.weights.LoadedModel
    target: Any  # the torch device, or "cpu" on the torch-free path
    numpy_path: NumpySampler | None = None

    def reseed(self, seed: int) -> None:
        if self.numpy_path is not None:
            seed_without_torch(seed)
        else:
            from gencli.device import seed_everything

            seed_everything(seed)

    def inference(self) -> Any:
        if self.numpy_path is not None:
            return contextlib.nullcontext()
        import torch

        return torch.inference_mode()

    def generate(self, request: SampleRequest) -> Any:
        if self.numpy_path is not None:
            return self.numpy_path.sample(self.loaded.model, request)
        return self.plugin.sample(self.loaded.model, self.loaded.config, self.options, request)


def load_sampler(plugin: Any, options: Any, *, weights: str | None, revision: str | None, device: str,
                 threads: int | None, quiet: bool) -> Sampler:
    """Locate, check and load the weights: torch-free where the plugin offers it and the CPU is certain."""
    from gencli import weights as weights_module

    located = weights_module.locate(plugin, weights, revision, quiet=quiet)  # torch-free checks first
    numpy_path = numpy_sampler_of(plugin, located.config, options, device, threads)
    if numpy_path is not None:  # no torch at all: importing it would cost more than many a sample
        return Sampler(plugin, options, weights_module.load_located_arrays(located, numpy_path.tensors), "cpu",
                       numpy_path)
    from gencli.device import resolve_device, set_threads

    target = resolve_device(device)
    set_threads(threads, target, "sample")
    return Sampler(plugin, options, weights_module.load_located(plugin, located, target), target)


# ---- the torch-free path --------------------------------------------------------------------------------------


def numpy_sampler_of(plugin: Any, config: Any, options: Any, device: str | None,
                     threads: int | None) -> NumpySampler | None:
    """The plugin's torch-free sampler for this command (``OptionalMembers.numpy_sampler``), or None: the plugin
    has none, declines these options, the command may run on a GPU, or GENCLI_SAMPLE_TORCH=1 asks for torch."""
    offer = getattr(plugin, "numpy_sampler", None)
    if offer is None or os.environ.get("GENCLI_SAMPLE_TORCH", "") not in ("", "0") or not certainly_cpu(device):
        return None
    numpy_threads(threads)  # before the plugin imports numpy
    return offer(config, options)


def certainly_cpu(spec: str | None) -> bool:
    """Whether ``--device SPEC`` resolves to the CPU, decided without importing torch. False when unsure: the
    torch path then decides, so a wrong guess costs time, never the GPU."""
    spec = (spec or "auto").strip().lower()
    if spec != "auto":
        return spec == "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):  # every GPU hidden
        return True
    import importlib.util

    found = importlib.util.find_spec("torch")  # finds the package without running it
    if found is None or not found.submodule_search_locations:
        return True
    try:
        version = (Path(list(found.submodule_search_locations)[0]) / "version.py").read_text(encoding="utf-8")
    except OSError:
        return False
    builds = re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+?)\s*$", version, flags=re.M)
    if builds and all(value == "None" for _, value in builds):
        return True  # torch's CPU build: cuda and hip are None
    if not builds or not sys.platform.startswith("linux"):
        return False
    # A CUDA or ROCm build: it can only find a GPU whose driver made these device files.
    return not any(Path(p).exists() for p in GPU_DEVICE_FILES)


GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL


def numpy_threads(threads: int | None) -> None:
    """Thread pools for the numpy path, set before numpy and numba load (they read these variables then).

    ``--threads N`` sets numba's pool and numpy's BLAS. Otherwise the BLAS gets one thread unless the user chose
    (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS): a sampling step's products are too small to share, and two OpenBLAS
    threads on a busy 2-core machine made 16 charrnn streams 28x slower. numba keeps its default (one clip per
    thread for -n N). torch, if a declined plugin falls back to it, reads neither variable.
    """
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads {threads}: must be at least 1")
        os.environ["NUMBA_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    elif not (os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def seed_without_torch(seed: int) -> None:
    """``seed_everything`` less torch: Python's and numpy's global generators."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
