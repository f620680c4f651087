"""Fault injection for the engine's own tests: one hook object, a no-op unless a test installs another.

The engine asks ``faults.hooks`` at a few named points (``kill_point``), whether a step's loss should turn
non-finite (``nonfinite_loss``) and whether a resume restores the RNG state (``restore_rng``). Only code can
install hooks (``tests/faulty_gencli.py`` does, around the real CLI): nothing in a user's environment can kill
or alter a real run.
"""

from __future__ import annotations


class NoFaults:
    """What every real run uses: no point fires, nothing changes."""

    def kill_point(self, name: str, step: int | None = None) -> None:
        """Called at ``checkpoint-write``, ``checkpoint-before-pointer``, ``after-save`` and ``step``."""

    def nonfinite_loss(self, step: int) -> bool:
        """Whether step ``step``'s loss is to be replaced by NaN."""
        return False

    def restore_rng(self) -> bool:
        """Whether ``checkpoint.restore`` restores the RNG state (skipping it proves the resume tests can fail)."""
        return True


hooks: NoFaults = NoFaults()


def install(new: NoFaults) -> None:
    global hooks
    hooks = new
