"""A plugin whose module raises on import. If GENCLI_FAKE_MARKER is set, importing it leaves a file there,
so a test can tell whether gencli imported it at all."""

import os

if os.environ.get("GENCLI_FAKE_MARKER"):
    with open(os.environ["GENCLI_FAKE_MARKER"], "a") as marker:
        marker.write("gencli_fake_broken imported\n")

raise ImportError("gencli_fake_broken needs libfakeaccel.so, which is not installed\nsecond line of detail")
