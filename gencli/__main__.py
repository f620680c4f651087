"""The `gencli` program: ``gencli.cli.main``, with a quicker exit."""

import gc

from gencli.cli import main as run


def main() -> None:
    try:
        run()
    finally:
        # The interpreter's exit collects garbage over every object still alive: after numba or torch, hundreds of
        # thousands, 0.2 to 0.6 s of CPU on a 2-core machine, which a user waits for after the output is written.
        # Frozen objects are skipped; atexit handlers and module clean-up still run. Only for the program: an
        # in-process main() (tests) keeps its collector as it was.
        gc.freeze()


if __name__ == "__main__":
    main()
