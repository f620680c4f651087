"""Where one training step's time goes: gencli's rbm (fp32, the engine's order of phases) beside the pieces of
scikit-learn's BernoulliRBM._fit, both at the same batch size, one thread, thread time per step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rbm_step_profile.py --batch-size 10 --avx2-only

gencli's step runs on a model in mid-training (the bundled weights, its persistent chains cut to the batch), each
phase timed in place (the best of 5 rounds of 10,000 / batch steps). scikit-learn's pieces are timed alone, with
hot caches (the best of 15 rounds), from random 0/1 states of the same densities, and its whole ``_fit`` as well.
The first line names the machine (benchmarks/machine.py).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from rbm_vs_sklearn import AVX2_ONLY


def best_ms(function: Callable[[], object], calls: int = 50, rounds: int = 15) -> float:
    function()
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        for _ in range(calls):
            function()
        best = min(best, (time.thread_time() - started) / calls * 1e3)
    return best


def gencli_phases(batch_size: int) -> tuple[float, dict[str, float]]:
    import torch

    from gencli import registry
    from gencli.schedule import batch_generator
    from gencli.weights import load
    from gencli_boltzmann import kernels, rbm, sgd

    plugin = registry.load("rbm")
    model = load(plugin, None, None, torch.device("cpu")).model
    model.chains = model.chains[:batch_size].clone()
    model.chain_hidden = model.chain_hidden[:batch_size].clone()
    options = plugin.TrainOptions()
    data = rbm.prepare(None, plugin.Config(), options).data  # intensities: the step binarizes them itself
    optimizer = sgd(model, 0.001, options.momentum, options.weight_decay)
    spent: dict[str, int] = {}

    def timed(name: str, function: Callable) -> Callable:
        def run(*args: object) -> object:
            started = time.thread_time_ns()
            result = function(*args)
            spent[name] = spent.get(name, 0) + time.thread_time_ns() - started
            return result
        return run

    originals = kernels.gibbs, kernels.statistics, torch.sigmoid_
    kernels.gibbs = timed("gibbs kernel: batch binarized, W^T laid out, products, samples", kernels.gibbs)
    kernels.statistics = timed("statistics kernel: weight gradient, biases, monitor", kernels.statistics)
    torch.sigmoid_ = timed("sigmoid (torch)", torch.sigmoid_)
    batch_of = timed("batch: pick the digits (engine)", data.batch)
    gradients = timed("gradients hook, whole", rbm.gradients)
    update = timed("SGD with momentum and weight decay (torch, fused)", optimizer.step)

    def step(index: int) -> None:
        batch = batch_of(batch_generator(0, index), batch_size)
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            loss, _ = gradients(model, batch, options)
        float(loss)
        update()

    try:
        for index in range(100):
            step(index)
        steps, best = 10_000 // batch_size, None
        for _ in range(5):
            spent.clear()
            started = time.thread_time_ns()
            for index in range(steps):
                step(index)
            total = (time.thread_time_ns() - started) / steps / 1e6
            if best is None or total < best[0]:
                best = (total, {name: value / steps / 1e6 for name, value in spent.items()})
    finally:
        kernels.gibbs, kernels.statistics, torch.sigmoid_ = originals
    total, phases = best
    whole = phases.pop("gradients hook, whole")
    phases["random bits, numpy views, kernel calls"] = whole - sum(
        value for name, value in phases.items() if "kernel" in name or "sigmoid" in name)
    phases["zero_grad, loss, loop"] = total - whole - phases["batch: pick the digits (engine)"] - phases[
        "SGD with momentum and weight decay (torch, fused)"]
    return total, phases


def sklearn_pieces(batch_size: int, visible: int = 784, hidden: int = 500) -> dict[str, float]:
    import numpy as np
    from scipy.special import expit
    from sklearn.neural_network import BernoulliRBM

    rng = np.random.RandomState(0)
    components = (rng.standard_normal((hidden, visible)) * 0.01).astype(np.float32)
    hidden_bias, visible_bias = np.zeros(hidden, np.float32), np.zeros(visible, np.float32)
    data = (rng.uniform(size=(batch_size, visible)) < 0.13).astype(np.float32)
    chain_hidden = (rng.uniform(size=(batch_size, hidden)) < 0.2).astype(np.float32)
    data_hidden = expit(data @ components.T + hidden_bias)
    negative = (rng.uniform(size=(batch_size, visible)) < expit(chain_hidden @ components + visible_bias)).astype(
        np.float32)
    negative_hidden = expit(negative @ components.T + hidden_bias)

    def update() -> object:
        change = np.dot(data.T, data_hidden).T
        change -= np.dot(negative_hidden.T, negative)
        return change

    change = update()

    def hidden_sample() -> None:
        sample = negative_hidden.copy()
        sample[rng.uniform(size=sample.shape) < sample] = 1.0
        np.floor(sample, sample)

    machine = BernoulliRBM(n_components=hidden, batch_size=batch_size, random_state=0)
    machine.components_, machine.h_samples_ = components.copy(), chain_hidden.copy()
    machine.intercept_hidden_, machine.intercept_visible_ = hidden_bias.copy(), visible_bias.copy()
    fit_rng = np.random.RandomState(1)
    return {
        "p(h | data): sgemm, expit": best_ms(lambda: expit(np.dot(data, components.T) + hidden_bias)),
        "visible sample: sgemm, expit, uniforms": best_ms(
            lambda: rng.uniform(size=(batch_size, visible)) < expit(np.dot(chain_hidden, components) + visible_bias)),
        "p(h | negative): sgemm, expit": best_ms(lambda: expit(np.dot(negative, components.T) + hidden_bias)),
        "update: two sgemms": best_ms(update),
        "apply the update": best_ms(lambda: np.add(components, 0.0005 * change, out=components)),
        "hidden sample": best_ms(hidden_sample),
        "BernoulliRBM._fit, whole (hot caches)": best_ms(lambda: machine._fit(data, fit_rng)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--avx2-only", action="store_true", help="the caps of rbm_vs_sklearn.py --avx2-only")
    args = parser.parse_args()
    if args.avx2_only:
        os.environ.update(AVX2_ONLY)  # before any library loads
    import torch
    from threadpoolctl import threadpool_limits

    from machine import describe, summary

    torch.set_num_threads(1)
    with threadpool_limits(1):
        total, phases = gencli_phases(args.batch_size)
        pieces = sklearn_pieces(args.batch_size)
    print(summary(describe()))
    print(f"gencli rbm fp32, batch {args.batch_size}: {total:.3f} ms per step (thread time)")
    for name, value in phases.items():
        print(f"  {name:55s} {value:.3f}")
    print(f"scikit-learn BernoulliRBM float32, batch {args.batch_size} (pieces alone, hot caches)")
    for name, value in pieces.items():
        print(f"  {name:55s} {value:.3f}")


if __name__ == "__main__":
    main()
