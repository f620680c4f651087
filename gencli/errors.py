"""User-facing errors: one line on stderr, a non-zero exit code, no traceback (GENCLI_DEBUG=1 shows it)."""


class GencliError(Exception):
    """An error the user can fix. The message is one line that says what is wrong and, if possible, what to do."""

    exit_code = 1


class UsageError(GencliError):
    """Bad flags or arguments (exit code 2, as for other command-line usage errors)."""

    exit_code = 2
