"""Torch intra-op threads: each plugin's training step and sampler at 1 thread against 2 (or --threads ...),
in one process and one run, so `gencli.device.auto_threads` can be checked against this machine.

    .venv/bin/python benchmarks/threads.py                       # every plugin, 1 vs 2 threads, 3 rounds
    .venv/bin/python benchmarks/threads.py --plugin pixelrnn --busy 1   # with one busy process beside it

The training step is the engine's (loss, backward, clipping, optimiser step; a plugin's own gradients where it
sets them) at the plugin's default architecture, batch size and data; the sampler is `plugin.sample` with the
bundled weights and default options (-n 1, and -n 16 for image plugins). Rounds alternate the thread counts
so a machine that speeds up or slows down affects each alike; the median round is reported, as items/s
(images, sequences or clips) and as the ratio to 1 thread. ``--busy K`` starts K processes spinning on a core
each (a user's other work), since that is what decides whether a second thread pays.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from typing import Any, Callable

import torch

from gencli import registry
from machine import describe, summary  # the CPU, its ISA extensions, libraries and threads: every benchmark prints them
from gencli.plugin import SampleRequest, defaults_of
from gencli.runspec import EngineOptions


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def train_step(plugin: Any) -> tuple[Callable[[], None], int]:
    """One engine step at the plugin's defaults, and the items (batch size) it trains on."""
    from gencli.schedule import batch_generator

    options = plugin.TrainOptions()
    prepared = plugin.prepare(None, plugin.Config(**defaults_of(plugin.Config)), options)
    model = plugin.build(prepared.config)
    configure = getattr(plugin, "configure_optimizer", None)
    engine = EngineOptions(**{k: v for k, v in plugin.train_defaults.items()})
    optimizer = configure(model, engine.lr, options) if configure else torch.optim.AdamW(model.parameters(), engine.lr)
    set_gradients = getattr(plugin, "gradients", None)
    parameters = [p for p in model.parameters() if p.requires_grad]
    counter = iter(range(10**9))
    model.train()

    def step() -> None:
        batch = prepared.data.batch(batch_generator(0, next(counter)), engine.batch_size)
        optimizer.zero_grad(set_to_none=True)
        if set_gradients is not None:
            with torch.no_grad():
                set_gradients(model, batch, options)
        else:
            loss, _ = plugin.loss(model, batch, options)
            loss.backward()
        if engine.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, engine.grad_clip)
        optimizer.step()

    return step, engine.batch_size


def sampler(plugin: Any, n: int) -> Callable[[], None]:
    from gencli import weights

    loaded = weights.load(plugin, None, None, torch.device("cpu"), quiet=True)
    options = plugin.SampleOptions()

    def run() -> None:
        with torch.inference_mode():
            result = plugin.sample(loaded.model, loaded.config, options, SampleRequest(n, 0, torch.device("cpu")))
            for _ in getattr(result, "chunks", ()):  # text streams lazily: generate all of it
                pass

    return run


def rate(work: Callable[[], None], items: int, seconds: float) -> float:
    """Items/s of ``work`` repeated for at least ``seconds`` (at least twice)."""
    done, start = 0, time.perf_counter()
    while done < 2 or time.perf_counter() - start < seconds:
        work()
        done += 1
    return done * items / (time.perf_counter() - start)


def measure(name: str, work: Callable[[], None], items: int, threads: list[int], rounds: int, seconds: float) -> None:
    torch.set_num_threads(threads[0])
    work()  # warm-up: first-call allocations, compilation
    rates: dict[int, list[float]] = {t: [] for t in threads}
    for _ in range(rounds):
        for t in threads:
            torch.set_num_threads(t)
            rates[t].append(rate(work, items, seconds))
    base = statistics.median(rates[threads[0]])
    cells = "  ".join(f"{statistics.median(rates[t]):9.2f} ({statistics.median(rates[t]) / base:4.2f}x)"
                      for t in threads)
    print(f"{name:28} {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", action="append", help="plugin(s) to measure (default: all)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts, first = baseline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="minimum seconds per measurement")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes started beside the benchmark")
    parser.add_argument("--skip", choices=["train", "sample"], help="leave out one workload")
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=spin, args=(3600,), daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    load = os.getloadavg()[0]
    print(f"{summary(describe())}; {args.busy} busy process(es) added (load average {load:.2f} at start)")
    print(f"{'plugin / workload':28} " + "  ".join(f"{f'{t} thread(s) items/s':>19}" for t in args.threads))
    names = args.plugin or [name for name, entry in registry.discover().items() if entry.status == "ok"]
    try:
        for name in names:
            plugin = registry.load(name)
            cases: list[tuple[str, Callable[[], Any]]] = []
            if args.skip != "train":
                cases.append(("train step", lambda: train_step(plugin)))
            if args.skip != "sample":
                for n in (1, 16) if plugin.modality == "image" else (1,):
                    cases.append((f"sample -n {n}", lambda n=n: (sampler(plugin, n), n)))
            for label, make in cases:
                try:
                    work, items = make()
                    measure(f"{name} {label}", work, items, args.threads, args.rounds, args.seconds)
                except Exception as error:  # one plugin's trouble (missing data, ...) should not end the table
                    print(f"{name} {label}: skipped ({type(error).__name__}: {str(error)[:80]})", flush=True)
    finally:
        for process in spinners:
            process.terminate()


if __name__ == "__main__":
    main()
