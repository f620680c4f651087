"""The plugins' model-side functions, looked up by name by gencli.plugin.LazyPlugin (imports torch)."""

from gencli_srgan.evaluation import evaluate  # noqa: F401
from gencli_srgan.training import build, configure_optimizer, initialize, loss, prepare  # noqa: F401
from gencli_srgan.upscale import sample  # noqa: F401
