"""Progress on stderr: a rich bar at a terminal, plain periodic lines otherwise, nothing with -q."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def format_eta(seconds: float) -> str:
    if seconds != seconds:  # nan: no step done yet
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class TrainingProgress:
    def __init__(self, total: int, start: int, *, quiet: bool, description: str, detail: str = "",
                 work: Callable[[int], float] | None = None) -> None:
        """``work``: the plugin's ``training_work`` (the work of the first n steps) where its steps differ in
        cost; by default every step costs the same."""
        self.total, self.quiet, self.description = total, quiet, description
        self.work: Callable[[int], float] = work or float
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
        """Seconds left at the mean pace of this session's steps so far (set-up time excluded), per unit of work."""
        elapsed = time.monotonic() - self.started
        done = self.work(step) - self.work(self.start_step)
        return elapsed / done * (self.work(self.total) - self.work(step)) if done > 0 else float("nan")

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


class WorkProgress:
    """The ``progress(done, total)`` hook of a long evaluation: a bar with an ETA at a terminal; elsewhere (a log,
    a CI job, a pipe) one line every ``interval`` seconds, so a minutes-long run is never silent, yet a short
    one prints nothing. Nothing with -q."""

    def __init__(self, description: str, *, quiet: bool, interval: float = 5.0, clock: Any = time.monotonic,
                 stream: Any = None, terminal: bool | None = None) -> None:
        self.description, self.quiet, self.interval, self.clock = description, quiet, interval, clock
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.last_line = clock()
        self._pace: tuple[float, int, int] | None = None  # (time, done, total) of a phase's first report
        self._bar: Any = None

    def update(self, done: int, total: int, **_: Any) -> None:
        if self.quiet or total <= 0:
            return
        now = self.clock()
        if self._pace is None or self._pace[2] != total or done < self._pace[1]:
            self._pace = (now, done, total)  # the pace is measured from here: set-up time is not work
            self.last_line = now
        since, first, _ = self._pace
        eta = (now - since) / (done - first) * (total - done) if done > first else float("nan")
        if self.terminal:
            self._draw(done, total, eta)
        elif now - self.last_line >= self.interval and done > first:
            self.last_line = now
            print(f"{self.description}: {done:,}/{total:,} ({100 * done / total:.0f}%), eta {format_eta(eta)}",
                  file=self.stream, flush=True)

    def _draw(self, done: int, total: int, eta: float) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
                                 console=Console(file=self.stream), redirect_stdout=False, redirect_stderr=False,
                                 transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total, eta="-")
        self._bar.update(self._task, completed=done, total=total, eta=format_eta(eta))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
