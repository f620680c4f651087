"""User-facing errors: one line on stderr, a non-zero exit code, no traceback (GENCLI_DEBUG=1 shows it)."""

import os
import signal


class GencliError(Exception):
    """An error the user can fix. The message is one line that says what is wrong and, if possible, what to do."""

    exit_code = 1


class UsageError(GencliError):
    """Bad flags or arguments (exit code 2, as for other command-line usage errors)."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised the way Ctrl-C raises KeyboardInterrupt so that clean-up runs (exit code 143)."""


def stopped_by(signum: int) -> str:
    """How a message names a stop by ``signum``: "terminated" (SIGTERM) or "interrupted" (Ctrl-C)."""
    return "terminated" if signum == signal.SIGTERM else "interrupted"


def signal_exit_code(signum: int) -> int:
    """The shell's convention for a command ended by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)


def debugging() -> bool:
    """GENCLI_DEBUG set to anything but empty, 0, false, no or off: show tracebacks. One rule for every process."""
    return os.environ.get("GENCLI_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
