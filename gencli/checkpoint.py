"""Training checkpoints as safetensors + JSON, written so that a crash at any instant loses nothing.

Layout of ``RUN_DIR/training_state/``::

    latest.json              {"step": 200, "folder": "step-00000200"}  <- the only pointer that is trusted
    step-00000200/
        model.safetensors    weights
        optimizer.safetensors  optimizer tensors (Adam moments, ...) flattened as "state.<param>.<key>"
        rng.safetensors      torch CPU (and CUDA) generator states, NumPy's key array
        state.json           step, lr scale, optimizer hyper-parameters, Python/NumPy RNG scalars

A checkpoint is first written complete into a hidden temporary folder, fsynced, renamed into place, and only
then is ``latest.json`` replaced (atomically). A kill before that rename leaves the previous checkpoint in
charge; a failed write (disk full, permissions) removes the partial folder and leaves ``latest.json`` alone.
Should the newest checkpoint be unreadable later (a damaged disk), ``restore`` falls back to the older one.

The engine's tests kill the process at the named points ``checkpoint-write`` and ``checkpoint-before-pointer``
through ``gencli.faults`` (a no-op in every real run).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli import faults
from gencli.errors import GencliError
from gencli.files import atomic_write, fsync_dir
from gencli.weights import load_tensors, state_dict_bytes

STATE_DIR = "training_state"
POINTER = "latest.json"
KEEP = 2  # checkpoints kept on disk; the older one is a fallback should the newest be damaged later


@dataclass
class Snapshot:
    step: int
    lr_scale: float
    extra: dict[str, Any]
    note: str = ""  # set by restore when it had to fall back to an older checkpoint


def _rng_state() -> tuple[dict[str, Any], dict[str, Any]]:
    import numpy as np
    import torch

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{i}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    py_version, py_state, py_gauss = random.getstate()
    scalars = {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
               "python": [py_version, list(py_state), py_gauss]}
    return tensors, scalars


def _set_rng_state(tensors: dict[str, Any], scalars: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    kind, pos, has_gauss, cached = scalars["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, cached))
    py_version, py_state, py_gauss = scalars["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))


def _split_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """torch optimizer state -> (tensors for safetensors, the rest for JSON)."""
    import torch

    tensors: dict[str, Any] = {}
    plain: dict[str, Any] = {"param_groups": state_dict["param_groups"], "state": {}}
    for index, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value
            else:
                plain["state"].setdefault(str(index), {})[key] = value
    return tensors, plain


def _join_optimizer(tensors: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in plain["state"].items()}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    # JSON turned tuples (Adam's betas, Rprop's etas) into lists; torch's optimisers keep them as tuples.
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in group.items()}
              for group in plain["param_groups"]]
    return {"state": state, "param_groups": groups}


def save(run_dir: Path, model: Any, optimizer: Any, snapshot: Snapshot) -> Path:
    """Write a complete checkpoint for ``snapshot.step``; returns its folder. Raises GencliError on I/O failure,
    leaving the previous checkpoint untouched."""
    root = run_dir / STATE_DIR
    name = f"step-{snapshot.step:08d}"
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        # Writes a crash interrupted. Only the writer cleans them up: restore stays read-only, so every rank
        # of a distributed run can restore while rank 0 writes.
        for leftover in root.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        tmp.mkdir()
        opt_tensors, opt_plain = _split_optimizer(optimizer.state_dict())
        rng_tensors, rng_scalars = _rng_state()
        atomic_write(tmp / "model.safetensors", state_dict_bytes(model.state_dict()))
        faults.hooks.kill_point("checkpoint-write", snapshot.step)
        atomic_write(tmp / "optimizer.safetensors", state_dict_bytes(opt_tensors))
        atomic_write(tmp / "rng.safetensors", state_dict_bytes(rng_tensors))
        state = {"step": snapshot.step, "lr_scale": snapshot.lr_scale, "optimizer": opt_plain,
                 "rng": rng_scalars, "extra": snapshot.extra}
        atomic_write(tmp / "state.json", json.dumps(state).encode())
        if final.exists():  # a leftover of a run killed after this rename but before the pointer moved
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(root)
        faults.hooks.kill_point("checkpoint-before-pointer", snapshot.step)
        atomic_write(root / POINTER, json.dumps({"step": snapshot.step, "folder": name}).encode())
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        last = latest_step(run_dir)
        kept = (f"the last good checkpoint (step {last}) is kept; free space or fix permissions, then add --resume"
                if last is not None else "no checkpoint was written yet")
        raise GencliError(f"could not write the checkpoint at step {snapshot.step} in {root}: "
                          f"{error.strerror or error}; {kept}") from None
    _prune(root, keep_names={name})
    return final


def _prune(root: Path, keep_names: set[str]) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for path in steps[:-KEEP]:
        if path.name not in keep_names:
            shutil.rmtree(path, ignore_errors=True)


def latest_step(run_dir: Path) -> int | None:
    pointer = run_dir / STATE_DIR / POINTER
    try:
        return int(json.loads(pointer.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return None


def _candidates(root: Path) -> list[Path]:
    """The folder latest.json names, then older complete checkpoints, newest first (fallbacks)."""
    named = root / json.loads((root / POINTER).read_text())["folder"]
    pointed = int(named.name.removeprefix("step-"))
    older = sorted((p for p in root.glob("step-*") if p.is_dir() and p != named
                    and p.name.removeprefix("step-").isdigit() and int(p.name.removeprefix("step-")) < pointed),
                   reverse=True)
    return [named, *older]


def _load_into(folder: Path, model: Any, optimizer: Any, restore_rng: bool) -> dict[str, Any]:
    state = json.loads((folder / "state.json").read_text())
    # Read every file before touching the model, so a damaged checkpoint leaves nothing half-loaded.
    weights = load_tensors(folder / "model.safetensors")
    opt_tensors = load_tensors(folder / "optimizer.safetensors")
    rng_tensors = load_tensors(folder / "rng.safetensors")
    model.load_state_dict(weights, strict=True)
    optimizer.load_state_dict(_join_optimizer(opt_tensors, state["optimizer"]))
    if restore_rng:
        _set_rng_state(rng_tensors, state["rng"])
    return state


def restore(run_dir: Path, model: Any, optimizer: Any) -> Snapshot:
    """Load the checkpoint ``latest.json`` points at into ``model`` and ``optimizer``, and restore every RNG.

    If that checkpoint is unreadable, the older one kept beside it is used instead (``Snapshot.note`` says so).
    """
    root = run_dir / STATE_DIR
    pointer = root / POINTER
    if not pointer.is_file():
        raise GencliError(f"--resume: no checkpoint in {root}; start the run again without --resume")
    from safetensors import SafetensorError

    restore_rng = faults.hooks.restore_rng()
    try:
        candidates = _candidates(root)
    except (OSError, ValueError, KeyError) as error:
        raise GencliError(f"--resume: {pointer} is unreadable ({error})") from None
    failures = []
    for folder in candidates:
        try:
            state = _load_into(folder, model, optimizer, restore_rng)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as error:
            failures.append(f"{folder.name}: {error}")
            continue
        note = f"checkpoint {candidates[0].name} is unreadable; resumed from {folder.name}" if failures else ""
        return Snapshot(step=int(state["step"]), lr_scale=float(state["lr_scale"]), extra=state.get("extra", {}),
                        note=note)
    raise GencliError(f"--resume: no readable checkpoint in {root} ({'; '.join(failures)})")
