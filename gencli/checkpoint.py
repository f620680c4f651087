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
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import GencliError
from gencli.weights import atomic_write, fsync_dir, state_dict_bytes

STATE_DIR = "training_state"
POINTER = "latest.json"
KEEP = 2  # checkpoints kept on disk; the older one is a fallback should the newest be damaged later


@dataclass
class Snapshot:
    step: int
    lr_scale: float
    extra: dict[str, Any]


def _fault_point(name: str) -> None:
    """Test hook: GENCLI_FAULT=name kills the process here with SIGKILL (see tests/test_engine_resume.py)."""
    if os.environ.get("GENCLI_FAULT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


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
    return {"state": state, "param_groups": plain["param_groups"]}


def save(run_dir: Path, model: Any, optimizer: Any, snapshot: Snapshot) -> Path:
    """Write a complete checkpoint for ``snapshot.step``; returns its folder. Raises GencliError on I/O failure,
    leaving the previous checkpoint untouched."""
    root = run_dir / STATE_DIR
    name = f"step-{snapshot.step:08d}"
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        opt_tensors, opt_plain = _split_optimizer(optimizer.state_dict())
        rng_tensors, rng_scalars = _rng_state()
        atomic_write(tmp / "model.safetensors", state_dict_bytes(model.state_dict()))
        _fault_point("checkpoint-write")
        atomic_write(tmp / "optimizer.safetensors", state_dict_bytes(opt_tensors))
        atomic_write(tmp / "rng.safetensors", state_dict_bytes(rng_tensors))
        state = {"step": snapshot.step, "lr_scale": snapshot.lr_scale, "optimizer": opt_plain,
                 "rng": rng_scalars, "extra": snapshot.extra}
        atomic_write(tmp / "state.json", json.dumps(state).encode())
        if final.exists():  # a leftover of a run killed after this rename but before the pointer moved
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(root)
        _fault_point("checkpoint-before-pointer")
        atomic_write(root / POINTER, json.dumps({"step": snapshot.step, "folder": name}).encode())
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        last = latest_step(run_dir)
        kept = f"the last good checkpoint (step {last}) is kept" if last is not None else "no checkpoint yet"
        raise GencliError(f"could not write checkpoint at step {snapshot.step} in {root}: "
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


def restore(run_dir: Path, model: Any, optimizer: Any) -> Snapshot:
    """Load the checkpoint ``latest.json`` points at into ``model`` and ``optimizer``, and restore every RNG."""
    from safetensors.torch import load_file

    root = run_dir / STATE_DIR
    pointer = root / POINTER
    if not pointer.is_file():
        raise GencliError(f"--resume: no checkpoint in {root}; start the run again without --resume")
    for leftover in root.glob(".tmp-*"):  # a write that a crash interrupted
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        folder = root / json.loads(pointer.read_text())["folder"]
        state = json.loads((folder / "state.json").read_text())
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        optimizer.load_state_dict(_join_optimizer(load_file(str(folder / "optimizer.safetensors")),
                                                  state["optimizer"]))
        _set_rng_state(load_file(str(folder / "rng.safetensors")), state["rng"])
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise GencliError(f"--resume: checkpoint in {root} is unreadable ({error})") from None
    return Snapshot(step=int(state["step"]), lr_scale=float(state["lr_scale"]), extra=state.get("extra", {}))
