"""The GANs' side of interactive editing (gencli.editing, ``gencli serve``): the generator as a differentiable
function of the latent, the latent a seed draws, and the training images for the nearest-real-image check."""

from __future__ import annotations

from typing import Any

import torch

from gencli.plugin import LatentEditor
from gencli_gan.latents import seed_latent
from gencli_gan.sampling import class_index
from gencli_gan.training import training_images


def latent_editor(model: Any, config: Any, options: Any) -> LatentEditor:
    model.eval()  # batch norm on running statistics: each image depends on its own latent only
    labels = None
    if model.num_classes:
        # A conditional GAN edits within one class: the asked one, else the first.
        label = getattr(options, "label", "") or "0"
        if label == "all":
            label = "0"
        labels = torch.tensor([class_index(label, config)])

    def generate(z: torch.Tensor) -> torch.Tensor:
        z = z.to(next(model.parameters()).device)
        batch_labels = None if labels is None else labels.expand(z.shape[0]).to(z.device)
        # to_unit without generate()'s clamp and no_grad: the search needs the gradient at the range's edges too.
        return model.to_unit(model.generator(z, batch_labels)).float().cpu()

    return LatentEditor(z_dim=config.z_dim, generate=generate,
                        latent_of_seed=lambda seed: seed_latent(seed, config.z_dim),
                        real_images=lambda: training_images(config.training_data, config).pixels)
