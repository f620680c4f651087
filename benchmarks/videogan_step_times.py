"""The cost of a videogan training step in the object warm-up against a step of the whole game, the ratio behind
``WARMUP_STEP_COST`` (the progress ETA) and the default run's time.

    .venv/bin/python benchmarks/videogan_step_times.py          # one thread, batch 32, median of 5 steps each

Each step is what the engine runs: a batch of embedded clips, ``loss``, its backward pass and Adam, on a new
run's model (labels, the object critic at twice --d-width). Both phases are measured in the same process, so the
ratio holds on a busy machine too; the absolute times name the CPU they came from.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from machine import describe

from gencli_videogan import Config, TrainOptions
from gencli_videogan import model as videogan


def median_step_seconds(object_warmup: int, steps: int, batch_size: int) -> float:
    """Median wall time of ``steps`` training steps (after two unmeasured ones) in the phase ``object_warmup``
    puts every step in (a large warm-up: all warm-up steps; 0: all whole-game steps)."""
    options = TrainOptions(object_warmup=object_warmup)
    prepared = videogan.prepare(None, Config(), options)
    torch.manual_seed(0)
    model = videogan.build(prepared.config).train()
    optimizer = videogan.configure_optimizer(model, 2e-4)
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        loss, _ = videogan.loss(model, prepared.data.batch(generator, batch_size), options)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warmup = median_step_seconds(10**9, args.steps, args.batch_size)
    whole = median_step_seconds(0, args.steps, args.batch_size)
    print(json.dumps({"warmup_step_s": round(warmup, 3), "whole_game_step_s": round(whole, 3),
                      "ratio": round(warmup / whole, 3), "threads": args.threads,
                      "batch_size": args.batch_size, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
