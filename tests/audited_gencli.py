"""`python tests/audited_gencli.py LOG ARGS...` runs `gencli ARGS` and appends to LOG every path it writes,
creates, renames, removes or changes the mode of (Python's audit hooks, PEP 578), one absolute path a line.

Used by tests/test_no_data_loss.py to check that a command touches nothing outside the folders it was given.
Native code that writes without Python's file functions is not seen: the test also moves HOME and TMPDIR.
"""

from __future__ import annotations

import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# audit event -> the positions of its path arguments that name something changed
CHANGES = {"os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.symlink": (1,),
           "os.link": (1,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.truncate": (0,),
           "shutil.rmtree": (0,), "os.mknod": (0,), "os.mkfifo": (0,)}


def main() -> None:
    log = open(sys.argv[1], "a", encoding="utf-8", errors="backslashreplace")  # opened before the hook: not logged

    def record(path: object) -> None:
        if isinstance(path, (str, bytes, os.PathLike)):
            log.write(os.path.abspath(os.fsdecode(path)) + "\n")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
            if writes:
                record(path)
        elif event in CHANGES:
            for position in CHANGES[event]:
                record(args[position])

    sys.addaudithook(hook)
    sys.argv = ["gencli", *sys.argv[2:]]
    from gencli.__main__ import main as gencli_main

    try:
        gencli_main()
    finally:
        log.flush()


if __name__ == "__main__":
    main()
