"""lapgan's model-side functions, looked up by name by gencli.plugin.LazyPlugin (imports torch)."""

from gencli_gan.lapgan.evaluation import evaluate  # noqa: F401
from gencli_gan.lapgan.model import build, loss, prepare  # noqa: F401
from gencli_gan.lapgan.sampling import sample  # noqa: F401
from gencli_gan.training import configure_optimizer  # noqa: F401
