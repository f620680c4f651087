"""One torch thread per test process, as tests/conftest.py sets for the whole suite: run alone
(`pytest plugins/pixelrnn`), these small in-process models otherwise ran up to 40x slower on a busy 2-core machine."""

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:
    sys.modules["torch"].set_num_threads(1)
