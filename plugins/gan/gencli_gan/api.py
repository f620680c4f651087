"""The plugins' model-side functions, looked up by name by gencli.plugin.LazyPlugin (imports torch)."""

from gencli_gan.editing import latent_editor  # noqa: F401
from gencli_gan.evaluation import evaluate  # noqa: F401
from gencli_gan.sampling import sample  # noqa: F401
from gencli_gan.training import build, configure_optimizer, loss, prepare  # noqa: F401
