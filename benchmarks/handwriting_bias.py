"""Handwriting: how steady are sampled strokes at --bias 0 and --bias 2, and does the window reach the end?

For each bias, "hello world" is written with seeds 1..N by the bundled model (or --weights). Reported:

- var_offsets: variance of the raw pen offsets (dx + dy, data units); the letter shapes dominate it.
- residual: mean squared distance, in normalised units, of each sampled offset from the model's own expected
  offset there (sum_j pi_j mu_j, the unbiased mixture, from re-reading the sampled line): the random part of the
  pen's motion, which Graves' bias is meant to shrink.
- finished: lines where the attention window passed the last character before the length limit.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/handwriting_bias.py [--weights RUN_DIR] [--seeds 10]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from gencli import weights
from machine import describe, summary  # the CPU, its ISA extensions, libraries and threads: every benchmark prints them
from gencli_handwriting import plugin
from gencli_handwriting.data import Alphabet, collate, normalise
from gencli_handwriting.model import split_mixture
from gencli_handwriting.sampling import generate

TEXT = "hello world"


def residuals(model, config, line: np.ndarray) -> np.ndarray:
    points, _, chars, char_mask = collate([normalise(line, config.offset_scale)],
                                          [Alphabet(config.alphabet).encode(TEXT)])
    inputs = torch.cat([torch.zeros_like(points[:, :1]), points[:, :-1]], dim=1)
    y_hat, _, _ = model(inputs, chars, char_mask)
    p = split_mixture(y_hat, model.mixtures)
    pi = F.softmax(p["pi_logit"], dim=-1)
    expected = torch.stack([(pi * p["mu_x"]).sum(-1), (pi * p["mu_y"]).sum(-1)], dim=-1)
    return ((points[..., :2] - expected) ** 2).sum(-1).flatten().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="run folder; default: the bundled weights")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(summary(describe()))
    loaded = weights.load(plugin, args.weights, None, torch.device("cpu"))
    model, config = loaded.model.eval(), loaded.config
    for bias in (0.0, 2.0):
        moves, residual, finished = [], [], 0
        for seed in range(1, args.seeds + 1):
            with torch.inference_mode():
                written = generate(model, config, [TEXT], bias=bias, temperature=1.0, max_points=400,
                                   generator=torch.Generator().manual_seed(seed))
                residual.append(residuals(model, config, written.lines[0]))
            moves.append(written.lines[0][:, :2])
            finished += int(written.finished[0])
        print(f"bias {bias:g}: var_offsets {np.concatenate(moves).var(axis=0).sum():.3f}  "
              f"residual {np.concatenate(residual).mean():.4f}  finished {finished}/{args.seeds}")


if __name__ == "__main__":
    main()
