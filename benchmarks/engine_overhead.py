"""Engine overhead: steps/s of gencli's Trainer against a plain PyTorch loop doing the same training.

Both sides train charrnn's default architecture on the same batches (the engine's (seed, step) batches), from
the same initial weights, with the same AdamW, learning-rate schedule and gradient clipping, so their final
weights must agree bit for bit; the script checks that too. The engine's time is its whole step loop: the
lr schedule, the non-finite check, metrics every --log-every steps and the final checkpoint. Set-up (reading
the corpus, building the model) and the end-of-run evaluation are left out of both.

    .venv/bin/python benchmarks/engine_overhead.py              # 60 steps, batch 32, 3 alternating rounds
    .venv/bin/python benchmarks/engine_overhead.py --steps 3 --preset tiny --rounds 1   # a smoke run

Rounds alternate (plain, engine, plain, engine, ...) so a machine that speeds up or slows down during the run
affects both sides alike; the median round of each side is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gencli import registry
from machine import describe, summary  # the CPU, its ISA extensions, libraries and threads: every benchmark prints them
from gencli.options import TRAIN_FLAGS, dataclass_flags
from gencli.runspec import resolve
from gencli.schedule import batch_generator, lr_at
from gencli.train import Trainer

TARGET = 1.05  # the engine may be at most 5% slower than the plain loop


def make_spec(plugin, steps: int, preset: str | None, threads_note: str):
    flags = TRAIN_FLAGS + dataclass_flags(plugin.Config, "Config") + dataclass_flags(plugin.TrainOptions,
                                                                                     "TrainOptions")
    core = {"steps": steps, "device": "cpu"}
    if preset:
        core["preset"] = preset
    return resolve(plugin, {"core": core}, flags, f"benchmarks/engine_overhead.py ({threads_note})")


def engine_round(plugin, spec) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(plugin, spec, Path(folder) / "run", resume=False, quiet=True)
        trainer.evaluate_at_end = False
        trainer.run()
        from safetensors.torch import load_file

        final = load_file(str(Path(folder) / "run" / "model.safetensors"))
    return trainer.steps_run / trainer.loop_seconds, final


def plain_round(plugin, spec) -> tuple[float, dict]:
    """The loop a person would write by hand for the same training."""
    import torch

    from gencli.device import seed_everything

    engine = spec.engine
    seed_everything(engine.seed)
    options = plugin.TrainOptions(**spec.options)
    prepared = plugin.prepare(spec.data, plugin.Config(**spec.config), options)
    model = plugin.build(prepared.config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=engine.lr, betas=(0.9, 0.99), weight_decay=0.0)
    data = prepared.data
    model.train()
    started = time.perf_counter()
    for step in range(engine.steps):
        inputs = data.batch(batch_generator(engine.seed, step), engine.batch_size)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, engine)
        loss, _ = plugin.loss(model, inputs, options)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), engine.grad_clip)
        optimizer.step()
    seconds = time.perf_counter() - started
    return engine.steps / seconds, {k: v.detach().clone() for k, v in model.state_dict().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="charrnn")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--preset", default=None, help="a preset (default: the plugin's default architecture)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each side, alternating")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    plugin = registry.load(args.plugin)
    spec = make_spec(plugin, args.steps, args.preset, f"{torch.get_num_threads()} threads")
    engine = spec.engine
    print(summary(describe()))
    print(f"{args.plugin} ({args.preset or 'default'} config), {engine.steps} steps, batch {engine.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)

    plain_round(plugin, spec)  # warm-up: allocator, kernels and the corpus cache, untimed
    plain, timed = [], []
    for _ in range(args.rounds):
        rate, plain_weights = plain_round(plugin, spec)
        plain.append(rate)
        rate, engine_weights = engine_round(plugin, spec)
        timed.append(rate)
        print(f"  round: plain {plain[-1]:.3f} steps/s, engine {timed[-1]:.3f} steps/s", flush=True)

    same = plain_weights.keys() == engine_weights.keys() and all(
        torch.equal(plain_weights[k], engine_weights[k]) for k in plain_weights)
    plain_rate, engine_rate = statistics.median(plain), statistics.median(timed)
    ratio = plain_rate / engine_rate  # > 1: the engine is slower
    print(f"plain PyTorch loop: {plain_rate:.3f} steps/s (median of {args.rounds})")
    print(f"gencli engine:      {engine_rate:.3f} steps/s (median of {args.rounds})")
    print(f"engine time / plain time: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%; target at most "
          f"{(TARGET - 1) * 100:+.0f}%)")
    print(f"same final weights bit for bit: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
