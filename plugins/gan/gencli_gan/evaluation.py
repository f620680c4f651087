"""``gencli evaluate gan|dcgan|cgan``: the GAN paper's Parzen-window estimate, plus digit-feature figures,
each next to the same figure for the training images themselves (the ``*_train_reference`` keys).

* Parzen: kernel centres are ``--samples`` generated images (10,000 as in the paper); sigma is chosen on the
  validation split; the test split's mean log-likelihood (nats) and its standard error are reported. The
  reference puts the centres on the training images instead: all 4,000 of the embedded data, the first
  10,000 of a larger set (``mnist``: 50,000), so that the reference has as many kernels as the paper's
  samples (more kernels alone raise the figure: 241 nats with 10,000 of mnist's training digits, 318 with
  all 50,000) and takes 27 s rather than 135 s on one core.
* data: the data set's own validation and test splits (``mnist``: the last 10,000 training images and the
  10,000 published test images); a folder's held-out fifth is cut into a validation and a test half.
  ``request.describe_data`` names them.
* digit features (labelled data only): ``frechet_digit_distance`` between the samples' and the test images'
  features in gencli's own digit classifier (gencli.metrics.digits: not Inception, not an FID),
  ``label_coverage`` and ``label_entropy_nats`` of the classifier's predictions, and for cgan
  ``conditional_label_accuracy``, how often the classifier names the class each sample was asked for.
"""

from __future__ import annotations

from typing import Any

import torch

from gencli.data.images import ImageSet
from gencli.errors import UsageError
from gencli.metrics.digits import digit_figures, labelled, unit
from gencli.metrics.parzen import parzen_figures
from gencli.plugin import EvalRequest
from gencli_gan.sampling import generate
from gencli_gan.training import held_out_images, training_images

REFERENCE_KERNELS = 10_000  # the GAN paper's sample count; the embedded data have 4,000 training images


def evaluate(model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    if options.samples < 2:
        raise UsageError("--samples must be at least 2")
    source = request.data or config.training_data
    train = training_images(source, config)
    valid, test = held_out_images(source, config)
    if train.shape != (config.channels, config.image_size, config.image_size):
        raise UsageError(f"--data {source}: images are {train.shape}, the model makes "
                         f"{(config.channels, config.image_size, config.image_size)}")
    kernels = reference_kernels(train)
    request.describe_data(f"{test.description}; Parzen sigma chosen on {valid.description}; training-image "
                          f"reference: {kernels.pixels.shape[0]:,} of {train.description}")
    samples, asked = draw(model, config, options.samples, request)
    figures = parzen_figures(samples, unit(kernels.pixels), unit(valid.pixels), unit(test.pixels))
    if labelled(train) and labelled(test):
        figures.update(digit_figures(train, test, samples, asked))
    return figures


def reference_kernels(train: ImageSet) -> ImageSet:
    """The training images that serve as the Parzen reference's kernels: the first REFERENCE_KERNELS."""
    if train.pixels.shape[0] <= REFERENCE_KERNELS:
        return train
    rows = slice(0, REFERENCE_KERNELS)
    return ImageSet(train.pixels[rows], train.labels[rows], train.classes, train.description)


def draw(model: Any, config: Any, n: int, request: EvalRequest) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples in [0, 1] from one seeded generator; a conditional model gets balanced labels i mod K."""
    z = torch.randn(n, config.z_dim, generator=torch.Generator().manual_seed(request.seed))
    labels = torch.arange(n) % config.num_classes if getattr(config, "num_classes", 0) else None
    return generate(model, z, labels, request.device, chunk=1000), labels
