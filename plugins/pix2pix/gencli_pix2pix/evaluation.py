"""``gencli evaluate pix2pix``: how close the translations of held-out inputs come to their true targets.

Figures, all on [0, 1] pixels and averaged over the held-out pairs: ``l1`` (mean absolute error), ``psnr_db``
(per image, 10 log10(1 / MSE)) and ``ssim`` (scikit-image's structural similarity, per channel for colour).
Measured in the same run on the same pairs, for scale:

* ``input_as_output_*``: the input itself taken as the answer (grey repeated for colour, colour by luminance
  for grey), the "do nothing" translation;
* ``mean_target_*``: the mean training target, one image for every input;
* with ``--against RUN`` (default: the bundled L1-only model when a GAN is scored on edges2digits) the same
  figures for that model, as ``l1_only_*`` for an L1-only model and ``against_*`` for another.

For edges2digits (A to B) the analogue of the paper's FCN-score: ``digit_accuracy``, how often the shared digit
classifier (gencli.metrics.digits) names the source digit in the translation, next to its accuracy on the real
digits (``digit_accuracy_real``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gencli.errors import UsageError
from gencli.plugin import EvalRequest
from gencli_pix2pix import embedded
from gencli_pix2pix.pairs import PairBatches, Pairs
from gencli_pix2pix.sampling import as_channels, translate
from gencli_pix2pix.training import held_out_pairs, training_pairs

MEAN_TARGET_BATCHES = 16  # x 32 crops: the mean training target of data drawn in random crops
BUNDLED_L1_ONLY = Path(__file__).parent / "weights" / "edges2digits-l1"


def closeness(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Mean L1, PSNR (dB) and SSIM of [0, 1] images (N, C, H, W) against their targets."""
    from skimage.metrics import structural_similarity

    squared = (outputs - targets).square().flatten(1).mean(1).clamp_min(1e-10)  # (N,) per-image MSE
    ssim = [structural_similarity(o.permute(1, 2, 0).numpy(), t.permute(1, 2, 0).numpy(), data_range=1.0,
                                  channel_axis=2, win_size=min(7, odd_below(o.shape[-1]), odd_below(o.shape[-2])))
            for o, t in zip(outputs.double(), targets.double())]
    return {"l1": float((outputs - targets).abs().mean()), "psnr_db": float((10 * torch.log10(1 / squared)).mean()),
            "ssim": float(np.mean(ssim))}


def odd_below(side: int) -> int:
    """The largest odd number <= side (SSIM's window must be odd and fit the image)."""
    return side if side % 2 else side - 1


def digit_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """How often the shared digit classifier names ``labels`` in 32x32 digits in [0, 1] (N, 1, 32, 32)."""
    from gencli.data.images import mnist
    from gencli.metrics import digits

    classifier = digits.classifier_for(mnist("train"))
    _, predicted = digits.embed(classifier, embedded.unpad_digits(images))
    return float((predicted == labels).double().mean())


def mean_target(source: str, config: Any) -> torch.Tensor:
    """The mean target of the training part of ``source`` in [0, 1], (Cb, H, W): over every pair, or over
    random crops for data drawn that way."""
    batches, _, _ = training_pairs(source, config, config_options(config))
    if isinstance(batches, PairBatches):
        return batches.pairs.b.double().mean(0).float() / 255.0
    generator = torch.Generator().manual_seed(0)
    crops = torch.cat([batches.batch(generator, 32)["b"] for _ in range(MEAN_TARGET_BATCHES)])  # (16 * 32, Cb, H, W)
    return crops.double().mean(0).float() / 255.0


def config_options(config: Any) -> Any:
    """TrainOptions that load the training data as the default recipe draws it."""
    from gencli_pix2pix import TrainOptions

    return TrainOptions(l1_only=config.objective == "l1")


def seeded_translation(model: Any, pairs: Pairs, request: EvalRequest) -> torch.Tensor:
    """The translations of the held-out inputs with dropout seeded by --seed (the same noise for every model)."""
    with torch.random.fork_rng():
        torch.manual_seed(request.seed)
        return translate(model, pairs.a, request.device)


def second_model(options: Any, config: Any, source: str, device: Any) -> tuple[Any, Any] | None:
    """(model, config) of --against, or None; a local run folder only (weights come from the core's loader)."""
    against = options.against
    if against == "none":
        return None
    if not against:
        if config.objective == "l1" or source != embedded.EDGES2DIGITS or not BUNDLED_L1_ONLY.is_dir():
            return None
        against = str(BUNDLED_L1_ONLY)
    if not Path(against).exists():
        raise UsageError(f"--against {against}: no such run folder (give a local pix2pix run folder, or 'none')")
    from gencli import weights
    from gencli_pix2pix import plugin

    loaded = weights.load(plugin, against, None, device, quiet=True)
    if (loaded.config.in_channels, loaded.config.out_channels, loaded.config.image_size) != (
            config.in_channels, config.out_channels, config.image_size):
        raise UsageError(f"--against {against}: that model maps other images than this one "
                         f"({loaded.config.image_size} px, {loaded.config.in_channels} -> "
                         f"{loaded.config.out_channels} channels)")
    return loaded.model, loaded.config


def evaluate(model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    source = request.data or config.training_data
    pairs = held_out_pairs(source, config)
    if 0 < options.pairs < len(pairs):  # evenly spaced, so a few still span every class of a sorted split
        rows = torch.linspace(0, len(pairs) - 1, options.pairs).round().long()
        pairs = pairs.take(rows, f"{options.pairs} evenly spaced")
    request.describe_data(pairs.description)
    targets = pairs.b.float() / 255.0  # (N, Cb, H, W)
    inputs = as_channels(pairs.a.float() / 255.0, config.out_channels)
    outputs = seeded_translation(model, pairs, request)
    request.progress(1, 3)
    figures: dict[str, float] = {"pairs": len(pairs)}
    figures |= closeness(outputs, targets)
    figures |= prefixed("input_as_output", closeness(inputs, targets))
    figures |= prefixed("mean_target", closeness(mean_target(source, config).expand_as(targets), targets))
    scores_digits = source == embedded.EDGES2DIGITS and config.direction == "AtoB"
    if scores_digits:
        figures["digit_accuracy"] = digit_accuracy(outputs, pairs.labels)
        # binomial: the spread two models' accuracies on these pairs may differ by through chance alone
        figures["digit_accuracy_standard_error"] = math.sqrt(figures["digit_accuracy"]
                                                             * (1 - figures["digit_accuracy"]) / len(pairs))
        figures["digit_accuracy_real"] = digit_accuracy(targets, pairs.labels)
    request.progress(2, 3)
    other = second_model(options, config, source, request.device)
    if other is not None:
        other_model, other_config = other
        name = "l1_only" if other_config.objective == "l1" else "against"
        other_outputs = seeded_translation(other_model, pairs, request)
        figures |= prefixed(name, closeness(other_outputs, targets))
        if scores_digits:
            figures[f"{name}_digit_accuracy"] = digit_accuracy(other_outputs, pairs.labels)
    request.progress(3, 3)
    return figures


def prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in figures.items()}
