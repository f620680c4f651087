"""The plugin's model-side functions, looked up by name by gencli.plugin.LazyPlugin (imports torch)."""

from gencli_pix2pix.evaluation import evaluate  # noqa: F401
from gencli_pix2pix.sampling import sample  # noqa: F401
from gencli_pix2pix.training import build, configure_optimizer, loss, prepare  # noqa: F401
