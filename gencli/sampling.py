"""`gencli sample`: weights -> model -> plugin.sample -> writer, with provenance."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

from gencli import writers
from gencli.errors import UsageError
from gencli.plugin import SampleRequest


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
               revision: str | None, device: str, quiet: bool) -> None:
    if n < 1:
        raise UsageError("-n must be at least 1")
    writers.check_destination(plugin.modality, output)  # fail before loading anything
    from gencli import weights as weights_module

    located = weights_module.locate(plugin, weights, revision, quiet=quiet)  # torch-free checks first
    import torch

    from gencli.device import resolve_device, seed_everything

    torch_device = resolve_device(device)
    loaded = weights_module.load_located(plugin, located, torch_device)
    seed_everything(seed)
    provenance = provenance_of(plugin, loaded, seed, options)
    progress = SampleProgress(quiet=quiet, description=f"sample {plugin.name}")
    try:
        with torch.inference_mode():
            request = SampleRequest(n, seed, torch_device, progress=progress.update)
            result = plugin.sample(loaded.model, loaded.config, options, request)
            progress.close()
            # Text streams lazily, so writing happens inside inference mode too.
            written = writers.write(result, output, provenance, default_stem=plugin.name)
    finally:
        progress.close()
    if not quiet and written != ["-"]:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
