"""The functions the declaration (``implementation = "gencli_videogan.api"``) hands the core, from the modules
that define them."""

from gencli_videogan.evaluation import evaluate  # noqa: F401
from gencli_videogan.model import build, configure_optimizer, loss, prepare, sample  # noqa: F401
