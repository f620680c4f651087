"""A plugin whose module calls sys.exit() on import: it must not take gencli down with it."""

import sys

sys.exit("gencli_fake_exits refuses to load")
