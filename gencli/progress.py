"""Progress on stderr: a rich bar at a terminal, plain periodic lines otherwise, nothing with -q."""

from __future__ import annotations

import sys
import time
from typing import Any


def format_eta(seconds: float) -> str:
    if seconds != seconds:  # nan: no step done yet
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class TrainingProgress:
    def __init__(self, total: int, start: int, *, quiet: bool, description: str, detail: str = "") -> None:
        self.total, self.quiet, self.description = total, quiet, description
        self.started = time.monotonic()
        self.start_step = start
        self._bar: Any = None
        if quiet:
            return
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            # Our own ETA rather than rich's TimeRemainingColumn, which needs two updates (two log intervals)
            # before it shows anything: this one appears with the first logged step.
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta {task.fields[eta]}"), TextColumn("{task.fields[metrics]}"),
                console=Console(stderr=True), redirect_stdout=False, redirect_stderr=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total, completed=start, metrics="", eta="-")
            if detail:
                self.message(f"{description}: {detail}")
        else:
            self.message(f"{description}: step {start}/{total}" + (f", {detail}" if detail else ""))

    def update(self, step: int, metrics: dict[str, float]) -> None:
        if self.quiet:
            return
        eta = self.eta_seconds(step)
        if self._bar is not None:
            self._bar.update(self._task, completed=step, metrics=format_metrics(metrics), eta=format_eta(eta))
            return
        self.message(f"step {step}/{self.total} {format_metrics(metrics)} eta {eta:.0f}s")

    def eta_seconds(self, step: int) -> float:
        """Seconds left at the mean pace of this session's steps so far (set-up time excluded)."""
        elapsed = time.monotonic() - self.started
        done = step - self.start_step
        return elapsed / done * (self.total - step) if done else float("nan")

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
