"""``gencli evaluate gan|dcgan|cgan``: the GAN paper's Parzen-window estimate, plus digit-feature figures,
each next to the same figure for the training images themselves (the ``*_train_reference`` keys).

* Parzen: kernel centres are ``--samples`` generated images (10,000 as in the paper); sigma is chosen on the
  validation split; the test split's mean log-likelihood (nats) and its standard error are reported. The
  reference puts the centres on the training images instead (4,000 for the embedded data).
* digit features (labelled data only): ``frechet_digit_distance`` between the samples' and the test images'
  features in gencli's own digit classifier (see digits.py: not Inception, not an FID), ``label_coverage`` and
  ``label_entropy_nats`` of the classifier's predictions, and for cgan ``conditional_label_accuracy``, how
  often the classifier names the class each sample was asked for.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gencli.errors import UsageError
from gencli.plugin import EvalRequest
from gencli_gan import digits
from gencli_gan.parzen import parzen_estimate
from gencli_gan.sampling import generate
from gencli_gan.training import held_out_images, training_images


def unit(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.float() / 255.0


def evaluate(model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    if options.samples < 2:
        raise UsageError("--samples must be at least 2")
    source = request.data or config.training_data
    train = training_images(source, config)
    valid, test = held_out_images(source, config)
    if train.shape != (config.channels, config.image_size, config.image_size):
        raise UsageError(f"--data {source}: images are {train.shape}, the model makes "
                         f"{(config.channels, config.image_size, config.image_size)}")
    samples, asked = draw(model, config, options.samples, request)
    model_parzen = parzen_estimate(samples, unit(valid.pixels), unit(test.pixels))
    reference = parzen_estimate(unit(train.pixels), unit(valid.pixels), unit(test.pixels))
    figures = {
        "parzen_log_likelihood_nats": model_parzen.mean_nats,
        "parzen_standard_error_nats": model_parzen.standard_error_nats,
        "parzen_sigma": model_parzen.sigma,
        "parzen_train_reference_nats": reference.mean_nats,
        "parzen_train_reference_standard_error_nats": reference.standard_error_nats,
        "parzen_train_reference_sigma": reference.sigma,
        "parzen_samples": float(samples.shape[0]),
    }
    if labelled(train) and labelled(test):
        figures.update(digit_figures(train, test, samples, asked))
    return figures


def draw(model: Any, config: Any, n: int, request: EvalRequest) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples in [0, 1] from one seeded generator; a conditional model gets balanced labels i mod K."""
    z = torch.randn(n, config.z_dim, generator=torch.Generator().manual_seed(request.seed))
    labels = torch.arange(n) % config.num_classes if getattr(config, "num_classes", 0) else None
    return generate(model, z, labels, request.device, chunk=1000), labels


def labelled(images: Any) -> bool:
    return len(images.classes) >= 2 and not bool((images.labels < 0).any())


def digit_figures(train: Any, test: Any, samples: torch.Tensor, asked: torch.Tensor | None) -> dict[str, float]:
    classifier = digits.classifier_for(train)
    classes = len(train.classes)
    sample_features, sample_labels = digits.embed(classifier, samples)
    test_features, test_predicted = digits.embed(classifier, unit(test.pixels))
    train_features, train_predicted = digits.embed(classifier, unit(train.pixels))
    coverage, entropy = digits.label_figures(sample_labels, classes)
    train_coverage, train_entropy = digits.label_figures(train_predicted, classes)
    figures: dict[str, float] = {}
    if min(len(sample_features), len(test_features), len(train_features)) >= 2:  # a covariance needs two images
        figures["frechet_digit_distance"] = digits.frechet_distance(sample_features, test_features)
        figures["frechet_digit_distance_train_reference"] = digits.frechet_distance(train_features, test_features)
    figures |= {
        "label_coverage": coverage,
        "label_coverage_train_reference": train_coverage,
        "label_entropy_nats": entropy,
        "label_entropy_train_reference_nats": train_entropy,
        "label_entropy_max_nats": math.log(classes),
        "digit_classifier_test_accuracy": float((test_predicted == test.labels).double().mean()),
    }
    if asked is not None:
        figures["conditional_label_accuracy"] = float((sample_labels == asked).double().mean())
    return figures
