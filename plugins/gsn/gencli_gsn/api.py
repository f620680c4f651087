"""The functions the declaration's LazyPlugin forwards to, gathered from the modules that define them."""

from gencli_gsn.chain import sample_images as sample
from gencli_gsn.evaluation import evaluate_gsn as evaluate
from gencli_gsn.model import build, loss, prepare

__all__ = ["build", "evaluate", "loss", "prepare", "sample"]
