"""WaveNet sampling speed: naive (full recompute) vs cached (Fast Wavenet queues, torch) vs fused (numba, CPU)
or graph (the cached step replayed as CUDA graphs, GPU), at batch 1 and 16, on the default config with random
weights (speed does not depend on the values).

    .venv/bin/python benchmarks/wavenet_sampling.py [--naive-steps 40] [--steps 16000] [--device cuda]

Samples/s counts generated samples summed over the batch; the real-time factor is seconds of compute per second
of audio for one clip (batch 1) or for the whole batch (batch 16). The fused sampler is compiled once (timed
separately) before it is measured; the graph sampler's capture (once per clip) is inside its timing.
"""

from __future__ import annotations

import argparse
import time

import torch

from gencli_wavenet import Config
from machine import describe, summary  # the CPU, its ISA extensions, libraries and threads: every benchmark prints them
from gencli_wavenet.model import WaveNetModel
from gencli_wavenet.sampling import generate


def measure(model, config, sampler: str, n: int, steps: int) -> float:
    start = time.perf_counter()
    generate(model, config, sampler, n=n, steps=steps, speakers=[0] * n, temperature=1.0, seed=0)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return n * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16000, help="samples per clip for cached and fused")
    parser.add_argument("--naive-steps", type=int, default=40, help="samples per clip for the (slow) naive sampler")
    parser.add_argument("--device", default="cpu", help="cpu: naive, cached, fused; cuda: naive, cached, graph")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = Config(num_speakers=4)
    device = torch.device(args.device)
    model = WaveNetModel(config).eval().to(device)
    fast = "fused" if device.type == "cpu" else "graph"
    rate = config.sample_rate
    print(summary(describe()) + (f"; GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    print(f"model: {len(model.layers)} layers, receptive field {model.receptive_field}, "
          f"channels {config.residual_channels}/{config.gate_channels}/{config.skip_channels}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")
    start = time.perf_counter()
    generate(model, config, fast, n=1, steps=8, speakers=[0], temperature=1.0, seed=0)
    print(f"{fast}: first call (numba compile or CUDA set-up) {time.perf_counter() - start:.2f} s")
    print(f"{'sampler':8} {'batch':>5} {'samples/s':>12} {'RTF':>8} {'vs naive':>9}")
    for n in (1, 16):
        rates = {}
        for sampler, steps in (("naive", args.naive_steps), ("cached", max(200, args.steps // 8)),
                               (fast, args.steps)):
            measure(model, config, sampler, n, 2)  # warm-up: oneDNN builds its kernels on first use of a shape
            rates[sampler] = measure(model, config, sampler, n, steps)
            rtf = n * rate / rates[sampler]
            print(f"{sampler:8} {n:5d} {rates[sampler]:12,.0f} {rtf:8.3f} {rates[sampler] / rates['naive']:8,.0f}x",
                  flush=True)
        print(f"  batch {n}: {fast} / cached = {rates[fast] / rates['cached']:.1f}x")


if __name__ == "__main__":
    main()
