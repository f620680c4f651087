"""`gencli evaluate`: held-out figures for a plugin's weights, as text or one JSON object."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from gencli.plugin import EvalRequest
from gencli.progress import WorkProgress


def evaluate_loaded(plugin: Any, model: Any, config: Any, options: Any, request: EvalRequest
                    ) -> dict[str, float | int]:
    import torch

    model.eval()
    with torch.inference_mode():
        return {k: plain_number(v) for k, v in plugin.evaluate(model, config, options, request).items()}


def plain_number(value: Any) -> float | int:
    """A metric as a Python number: integers (counts: characters, images ...) stay ints, the rest are floats."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        return value
    dtype = getattr(value, "dtype", None)  # a numpy or torch scalar
    if dtype is not None and getattr(value, "ndim", 0) == 0 and not getattr(dtype, "is_floating_point", True):
        return int(value)  # torch integer tensor
    if dtype is not None and getattr(dtype, "kind", "") in ("i", "u"):
        return int(value)  # numpy integer
    return float(value)


def run_evaluate(plugin: Any, options: Any, *, weights: str | None, revision: str | None, data: str | None,
                 json: bool, seed: int, device: str, quiet: bool, threads: int | None = None) -> None:
    from gencli import weights as weights_module

    located = weights_module.locate(plugin, weights, revision, quiet=quiet)  # torch-free checks first
    from gencli.device import resolve_device, seed_everything, set_threads

    torch_device = resolve_device(device)
    set_threads(threads, torch_device, "train")  # batched forward passes: sized like training
    loaded = weights_module.load_located(plugin, located, torch_device)
    seed_everything(seed)
    started = time.perf_counter()
    progress = WorkProgress(f"evaluate {plugin.name}", quiet=quiet)
    scored: list[str] = []  # what the plugin says it scored (data set, split, count)
    try:
        metrics = evaluate_loaded(plugin, loaded.model, loaded.config, options,
                                  EvalRequest(data, torch_device, seed, progress=progress.update,
                                              describe_data=scored.append))
    finally:
        progress.close()
    payload = {
        "plugin": plugin.name,
        "weights": loaded.source.id,
        "weights_sha256": loaded.sha256,
        "data": "; ".join(scored) or data or "default held-out split",
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 3),
        "metrics": metrics,
    }
    _print(payload, as_json=json)


def _print(payload: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload))
        return
    print(f"{payload['plugin']}  weights {payload['weights']}  data: {payload['data']}")
    for name, value in payload["metrics"].items():
        print(f"  {name:<28} {value}" if isinstance(value, int) else f"  {name:<28} {value:.4f}")
    sys.stdout.flush()
