"""The training ETA scales the pace so far by the work left, for plugins whose steps differ in cost."""

from __future__ import annotations

import time

from gencli.progress import TrainingProgress


def cheap_then_dear(step: int) -> float:
    """50 steps at a fifth of the cost, then full-cost steps."""
    return 0.2 * min(step, 50) + max(0, step - 50)


def progress_after(seconds: float, work: object = None) -> TrainingProgress:
    progress = TrainingProgress(100, 0, quiet=True, description="train x", work=work)  # type: ignore[arg-type]
    progress.started = time.monotonic() - seconds
    return progress


def test_the_eta_counts_the_work_left_not_the_steps_left() -> None:
    # 10 s for the 50 cheap steps (10 units of work): the 50 dear steps left are 50 units, about 50 s.
    assert 49.0 < progress_after(10.0, cheap_then_dear).eta_seconds(50) < 51.5
    assert 9.5 < progress_after(10.0).eta_seconds(50) < 10.5  # equal steps: 50 more at 0.2 s
    # Resumed at step 25 (inside the cheap part): only this session's work sets the pace.
    resumed = TrainingProgress(100, 25, quiet=True, description="train x", work=cheap_then_dear)
    resumed.started = time.monotonic() - 5.0  # 25 cheap steps, 5 units of work, in 5 s
    assert 49.0 < resumed.eta_seconds(50) < 51.5  # 50 units left at 1 s each (not 0.5 s: 10 units in 5 s)
