"""A tiny WaveNet for the tests: its architecture and a seeded model whose logits are far from uniform."""

from __future__ import annotations

import numpy as np
import torch

from gencli_wavenet import Config
from gencli_wavenet.model import WaveNetModel

TINY = {"layers_per_stack": 3, "stacks": 2, "residual_channels": 8, "gate_channels": 8, "skip_channels": 16}


def random_model(num_speakers: int = 3, **overrides) -> tuple[WaveNetModel, Config]:
    torch.manual_seed(0)
    config = Config(**{**TINY, **overrides}, num_speakers=num_speakers)
    model = WaveNetModel(config).eval()
    with torch.no_grad():  # larger than default init so the logits are far from uniform
        for p in model.parameters():
            p.mul_(2.0)
    return model, config


def arrays_of(model: WaveNetModel) -> dict[str, np.ndarray]:
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}
