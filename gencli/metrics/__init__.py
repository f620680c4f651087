"""Shared image metrics that every image plugin can use (imported lazily: these modules import torch).

* ``gencli.metrics.parzen``: the GAN paper's Parzen-window log-likelihood (sigma on the validation split,
  chunked over points and kernels) and ``parzen_figures`` with its training-images reference.
* ``gencli.metrics.digits``: a small digit classifier (bundled for the embedded MNIST split, trained and cached
  for a labelled folder), its feature-space Frechet distance, label coverage and entropy, ``digit_figures``.
"""
