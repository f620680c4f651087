"""`python tests/faulty_gencli.py FAULT ARGS...`: `gencli ARGS` with one injected fault (gencli.faults).

FAULT is one of:

* ``<point>`` or ``<point>-<step>``: SIGKILL at a named point (``checkpoint-write``, ``checkpoint-before-pointer``,
  ``after-save``, ``step``), at its first occurrence or at that step;
* ``nonfinite-N``: step N's loss is NaN, once (a rollback then gets past it); ``nonfinite-from-N``: every
  step's loss from N on (so rollbacks run out);
* ``no-rng-restore``: ``--resume`` skips the RNG state.
"""

from __future__ import annotations

import os
import signal
import sys

from gencli import faults


class Faults(faults.NoFaults):
    def __init__(self, wanted: str) -> None:
        self.wanted = wanted
        self.nan_fired = False

    def kill_point(self, name: str, step: int | None = None) -> None:
        if self.wanted == name or (step is not None and self.wanted == f"{name}-{step}"):
            os.kill(os.getpid(), signal.SIGKILL)

    def nonfinite_loss(self, step: int) -> bool:
        if self.wanted.startswith("nonfinite-from-"):
            return step >= int(self.wanted.removeprefix("nonfinite-from-"))
        if self.wanted == f"nonfinite-{step}" and not self.nan_fired:
            self.nan_fired = True
            return True
        return False

    def restore_rng(self) -> bool:
        return self.wanted != "no-rng-restore"


if __name__ == "__main__":
    faults.install(Faults(sys.argv[1]))
    sys.argv = ["gencli", *sys.argv[2:]]  # what the run records as its command
    from gencli.__main__ import main

    main()
