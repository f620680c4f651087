"""``gencli evaluate gsn``: the GAN paper's Parzen-window estimate of the test digits from chain states, beside
the same estimate with the training digits as kernels, the digit-feature figures of those states, and how the
chain mixes between digit classes.

* Parzen (gencli.metrics.parzen): ``--chains`` chains start from base-rate noise (chain.noise_start), run
  ``--burn-in`` steps, then each gives its next consecutive x_hat states until there are ``--samples`` (10,000
  as in the paper); sigma is chosen on the validation split, the test split's mean log-likelihood (nats) and
  standard error are reported.
* mixing (labelled data): one chain runs ``--mixing-steps`` steps after the burn-in; gencli's digit classifier
  (gencli.metrics.digits) names the class of every state: ``mixing_classes_visited``,
  ``mixing_class_changes`` and ``mixing_mean_steps_per_class`` (the mean length of a stay in one class).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gencli.data.images import ImageSet, data_split, is_embedded
from gencli.errors import UsageError
from gencli.metrics import digits
from gencli.metrics.parzen import parzen_figures
from gencli.plugin import EvalRequest
from gencli_gsn.chain import Chain, noise_start
from gencli_gsn.model import GSNNet


def held_out(source: str | None, size: int) -> tuple[ImageSet, ImageSet]:
    """(validation, test): a data set's own splits, or a folder's held-out part cut in two halves."""
    if is_embedded(source):
        return data_split(source, "valid", size, 1), data_split(source, "test", size, 1)
    held = data_split(source, "test", size, 1)
    half = held.pixels.shape[0] // 2
    if half == 0:
        return held, held
    part = lambda rows: ImageSet(held.pixels[rows], held.labels[rows], held.classes,  # noqa: E731
                                 held.description)
    return part(slice(0, half)), part(slice(half, None))


def chain_samples(model: GSNNet, options: Any, visible: int, progress: Any) -> torch.Tensor:
    """``options.samples`` states (N, V) in [0, 1]: consecutive states of ``options.chains`` chains after burn-in."""
    chains = min(options.chains, options.samples)
    kept = math.ceil(options.samples / chains)  # states per chain
    chain = Chain(model, noise_start(model, chains))
    total = options.burn_in + kept
    chain.run(options.burn_in)
    progress(options.burn_in, total)
    states = []
    for step in range(kept):
        states.append(chain.advance().cpu())  # (chains, V)
        if (step + 1) % 50 == 0:
            progress(options.burn_in + step + 1, total)
    return torch.stack(states, dim=1).reshape(-1, visible)[:options.samples]  # chain by chain


def mixing_figures(model: GSNNet, options: Any, train: ImageSet, size: int) -> dict[str, float]:
    chain = Chain(model, noise_start(model, 1))
    chain.run(options.burn_in)
    states = torch.cat([chain.advance().cpu() for _ in range(options.mixing_steps)])  # (steps, V)
    _, predicted = digits.embed(digits.classifier_for(train), states.reshape(-1, 1, size, size))
    changes = int((predicted[1:] != predicted[:-1]).sum())
    return {
        "mixing_steps": options.mixing_steps,
        "mixing_classes_visited": int(predicted.unique().numel()),
        "mixing_class_changes": changes,
        "mixing_mean_steps_per_class": options.mixing_steps / (changes + 1),
    }


@torch.no_grad()
def evaluate_gsn(model: GSNNet, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    if options.samples < 2 or options.chains < 1 or options.mixing_steps < 2:
        raise UsageError("--samples and --mixing-steps must be at least 2, --chains at least 1")
    source = request.data or config.training_data
    size, visible = config.image_size, config.image_size ** 2
    train = data_split(source, "train", size, 1)
    valid, test = held_out(source, size)
    request.describe_data(f"{test.description}; sigma chosen on {valid.description}; training-digit reference: "
                          f"{train.description}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(request.seed)
        samples = chain_samples(model, options, visible, request.progress)
        figures = parzen_figures(samples.reshape(-1, 1, size, size), digits.unit(train.pixels),
                                 digits.unit(valid.pixels), digits.unit(test.pixels))
        if digits.labelled(train) and digits.labelled(test):
            figures.update(digits.digit_figures(train, test, samples.reshape(-1, 1, size, size)))
            figures.update(mixing_figures(model, options, train, size))
    return figures
