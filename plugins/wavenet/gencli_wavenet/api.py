"""The plugin's model-side functions, looked up by name by gencli.plugin.LazyPlugin (imports torch)."""

from gencli_wavenet.model import WaveNetModel as build  # noqa: F401  build(config) -> the network
from gencli_wavenet.evaluation import evaluate  # noqa: F401
from gencli_wavenet.model import loss, prepare  # noqa: F401
from gencli_wavenet.sampling import sample  # noqa: F401
