"""`gencli sample`: weights -> model -> plugin.sample -> writer, with provenance."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from gencli import writers
from gencli.errors import UsageError
from gencli.plugin import SampleRequest


def provenance_of(plugin: Any, loaded: Any, seed: int, options: Any) -> dict[str, Any]:
    from gencli import __version__

    return {
        "plugin": plugin.name,
        "weights": loaded.source.id,
        "weights_sha256": loaded.sha256,
        "seed": seed,
        "options": {k: str(v) if not isinstance(v, (int, float, str, bool, type(None))) else v
                    for k, v in dataclasses.asdict(options).items()},
        "gencli_version": __version__,
    }


def run_sample(plugin: Any, options: Any, *, output: str | None, n: int, seed: int, weights: str | None,
               revision: str | None, device: str, quiet: bool) -> None:
    if n < 1:
        raise UsageError("-n must be at least 1")
    writers.check_destination(plugin.modality, output)  # fail before loading anything
    from gencli import weights as weights_module

    located = weights_module.locate(plugin, weights, revision, quiet=quiet)  # torch-free checks first
    import torch

    from gencli.device import resolve_device, seed_everything

    torch_device = resolve_device(device)
    loaded = weights_module.load_located(plugin, located, torch_device)
    seed_everything(seed)
    provenance = provenance_of(plugin, loaded, seed, options)
    with torch.inference_mode():
        result = plugin.sample(loaded.model, loaded.config, options, SampleRequest(n, seed, torch_device))
        # Text streams lazily, so writing happens inside inference mode too.
        written = writers.write(result, output, provenance, default_stem=plugin.name)
    if not quiet and written != ["-"]:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
