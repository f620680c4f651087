"""PixelRNN sampling speed: the naive sampler (the whole network for every pixel) against the cached one (every
layer's activations cached, Ramachandran et al. 2017: one pixel's work per layer per pixel), for each
architecture, at batch 1 and 16, in one run.

    .venv/bin/python benchmarks/pixelrnn_sampling.py [--naive-rows 4] [--rows 28] [--threads 1]

Each architecture uses its preset's size (gated-pixelcnn: the bundled model's) with random weights: speed does not
depend on the values. The naive sampler costs the same for every pixel (one full pass each), so it is timed
on its first --naive-rows rows and scaled to whole images; the cached sampler is timed on --rows rows.
Images/s counts whole 28x28 images summed over the batch.
"""

from __future__ import annotations

import argparse
import time

import torch

from gencli_pixelrnn import Config, plugin
from machine import describe, summary  # the CPU, its ISA extensions, libraries and threads: every benchmark prints them
from gencli_pixelrnn.model import PixelRNN
from gencli_pixelrnn.sampling import generate


def images_per_second(model: PixelRNN, stepper: str, batch: int, rows: int) -> float:
    size = model.config.image_size
    values = torch.zeros(batch, model.colours, size, size)
    start = time.perf_counter()
    with torch.inference_mode():
        generate(model, values, generator=torch.Generator().manual_seed(0), stepper=stepper, stop_row=rows)
    return batch * (rows / size) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-rows", type=int, default=4, help="rows timed for the naive sampler")
    parser.add_argument("--rows", type=int, default=28, help="rows timed for the cached sampler")
    parser.add_argument("--arch", action="append", help="architecture(s) to time (default: all four)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both samplers (gencli sample's "
                                                               "own choice is 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(summary(describe()))
    print(f"{'arch':16} {'layers x maps':>13} {'batch':>5} {'naive img/s':>12} {'cached img/s':>13} {'ratio':>7}")
    for arch in args.arch or ["gated-pixelcnn", "pixelcnn", "row-lstm", "diagonal-bilstm"]:
        torch.manual_seed(0)
        config = Config(**{**plugin.presets[arch].config, "levels": 2, "channels": 1})
        model = PixelRNN(config).eval()
        for batch in (1, 16):
            naive = images_per_second(model, "naive", batch, args.naive_rows)
            cached = images_per_second(model, "cached", batch, args.rows)
            print(f"{arch:16} {f'{config.layers} x {config.hidden}':>13} {batch:>5} {naive:>12.3f} {cached:>13.2f} "
                  f"{cached / naive:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()
