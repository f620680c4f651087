"""The shared training engine: one loop for every plugin, resumable bit for bit, observable, distributable.

The plugin supplies data (``prepare``), a model (``build``) and an objective (``loss``); the engine owns
everything else: devices and precision, the optimiser and learning-rate schedule, gradient clipping,
non-finite-loss handling, progress, metrics, checkpoints, resume, SIGINT, the model card and DDP.

Why batches are drawn from a generator seeded by (seed, step): the data position is then the step number
itself, so resuming, or splitting a global batch across ranks, needs no data-loader state at all.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gencli import checkpoint, report
from gencli.errors import GencliError, UsageError
from gencli.options import Flag
from gencli.runspec import ENGINE_FIELDS, RUN_FILE, RunSpec, load_run, resolve
from gencli.weights import atomic_write, save_model

METRICS_FILE = "metrics.jsonl"
MAX_ROLLBACKS = 3
LAUNCHED_ENV = "GENCLI_LAUNCHED"  # set by the --nproc launcher for its workers: the parent did the checks


# ---- entry point: resolve the run, then train here or launch workers -----------------------------------


def launch(plugin: Any, flags: list[Flag], typed: dict[str, dict[str, Any]], *, command: str, out: Path | None,
           resume: bool, quiet: bool) -> None:
    run_dir = Path(out) if out is not None else Path("runs") / plugin.name
    in_worker = os.environ.get(LAUNCHED_ENV) == "1"
    if resume:
        spec = resume_spec(plugin, run_dir, typed)
    else:
        spec = resolve(plugin, typed, flags, command)
        if not in_worker and (run_dir / RUN_FILE).exists():
            raise UsageError(f"{run_dir} already holds a run; add --resume to continue it or pick another --out")
    nproc = int(spec.launcher.get("nproc", 1))
    if nproc < 1:
        raise UsageError("--nproc must be at least 1")
    distributed = nproc > 1 or spec.launcher.get("nnodes") not in (None, "1")
    if distributed and not in_worker:
        _write_run_spec(run_dir, spec)  # workers then all read one settled spec
        launch_workers(spec, run_dir, nproc)
        return
    Trainer(plugin, spec, run_dir, resume=resume, quiet=quiet).run()


def resume_spec(plugin: Any, run_dir: Path, typed: dict[str, dict[str, Any]]) -> RunSpec:
    """The saved spec, with the few settings that may change on resume (--steps, --save-every, ...) applied."""
    spec = load_run(run_dir)
    if spec.plugin != plugin.name:
        raise UsageError(f"--resume: {run_dir} is a {spec.plugin} run, not {plugin.name}")
    changed_arch = set(typed.get("Config", {})) | set(typed.get("TrainOptions", {}))
    core = typed.get("core", {})
    forbidden = changed_arch | ({"data"} & set(core)) | ({"preset", "config"} & set(core)) | (
        {"seed", "batch_size"} & set(core))
    if forbidden:
        names = ", ".join("--" + n.replace("_", "-") for n in sorted(forbidden))
        raise UsageError(f"--resume keeps the run's settings; {names} cannot change (start a new --out)")
    for key, value in core.items():
        if key in ENGINE_FIELDS:
            setattr(spec.engine, key, value)
        elif key in ("nproc", "nnodes", "node_rank", "rdzv_endpoint"):
            spec.launcher[key] = value
    return spec


def launch_workers(spec: RunSpec, run_dir: Path, nproc: int) -> None:
    """Re-run this command under torchrun's launcher: one worker per process, rank 0 writes."""
    argv = [a for a in sys.argv[1:]]
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    nnodes = spec.launcher.get("nnodes")
    if nnodes in (None, "1"):
        torchrun.append("--standalone")
    else:
        torchrun += [f"--nnodes={nnodes}", "--rdzv-backend=c10d",
                     f"--rdzv-endpoint={spec.launcher.get('rdzv_endpoint') or 'localhost:29400'}"]
        if spec.launcher.get("node_rank") is not None:
            torchrun.append(f"--node-rank={spec.launcher['node_rank']}")
    if "--out" not in argv:
        argv += ["--out", str(run_dir)]
    env = {**os.environ, LAUNCHED_ENV: "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    process = subprocess.run(torchrun + ["-m", "gencli"] + argv, env=env)
    if process.returncode != 0:
        raise GencliError(f"distributed training exited with code {process.returncode} (see messages above)")


def _write_run_spec(run_dir: Path, spec: RunSpec) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / RUN_FILE, (spec.to_json() + "\n").encode())


# ---- the loop -----------------------------------------------------------------------------------------


def batch_generator(seed: int, step: int) -> Any:
    import torch

    # Mix seed and step so neighbouring seeds do not share batch sequences shifted by one.
    return torch.Generator().manual_seed((seed * 0x9E3779B1 + step * 0x85EBCA77 + 1) % (2**63))


def lr_at(step: int, engine: Any) -> float:
    """Linear warm-up, then a cosine decay from lr to lr/10 over the rest of the run (nanoGPT's shape)."""
    if engine.warmup_steps and step < engine.warmup_steps:
        return engine.lr * (step + 1) / engine.warmup_steps
    span = max(1, engine.steps - engine.warmup_steps)
    progress = min(1.0, (step - engine.warmup_steps) / span)
    return engine.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def to_device(batch: Any, device: Any) -> Any:
    if hasattr(batch, "to"):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def shard(batch: Any, rank: int, world: int) -> Any:
    """This rank's contiguous slice of a global batch (leading dimension)."""
    if hasattr(batch, "shape"):
        size = batch.shape[0] // world
        return batch[rank * size:(rank + 1) * size]
    if isinstance(batch, dict):
        return {k: shard(v, rank, world) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(v, rank, world) for v in batch)
    return batch


class Interrupted(Exception):
    pass


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_spec: str) -> Distributed:
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = device_spec != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


class Trainer:
    def __init__(self, plugin: Any, spec: RunSpec, run_dir: Path, *, resume: bool, quiet: bool) -> None:
        self.plugin, self.spec, self.run_dir, self.resume = plugin, spec, run_dir, resume
        self.quiet = quiet
        self.interrupted = False

    # -- setup --

    def _device(self, dist: Distributed) -> Any:
        import torch

        from gencli.device import resolve_device

        device = resolve_device(self.spec.engine.device)
        if device.type == "cuda" and dist.world > 1:
            device = torch.device("cuda", dist.local_rank)
        return device

    def _autocast(self, device: Any) -> Any:
        import contextlib

        import torch

        precision = self.spec.engine.precision
        if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
            if getattr(self.plugin, "supports_bf16", True):
                return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _optimizer(self, model: Any) -> Any:
        import torch

        configure = getattr(self.plugin, "configure_optimizer", None)
        if configure is not None:
            return configure(model, self.spec.engine.lr)
        return torch.optim.AdamW(model.parameters(), lr=self.spec.engine.lr, betas=(0.9, 0.99), weight_decay=0.0)

    # -- run --

    def run(self) -> None:
        import torch

        from gencli.device import seed_everything

        engine = self.spec.engine
        dist = init_distributed(engine.device)
        device = self._device(dist)
        if engine.batch_size % dist.world:
            raise UsageError(f"--batch-size {engine.batch_size} must divide evenly across {dist.world} processes")
        seed_everything(engine.seed)
        plugin = self.plugin
        options = plugin.TrainOptions(**self.spec.options)
        prepared = plugin.prepare(self.spec.data, plugin.Config(**self.spec.config), options)
        config = self.config = prepared.config
        model = plugin.build(config).to(device)
        optimizer = self._optimizer(model)
        step, lr_scale = 0, 1.0
        if self.resume:
            snapshot = checkpoint.restore(self.run_dir, model, optimizer)
            step, lr_scale = snapshot.step, snapshot.lr_scale
        elif dist.is_main:
            self._start_run_folder()
        if dist.is_main:
            save_model(self.run_dir, plugin, model, config)  # config.json first: the folder is loadable early
            _trim_metrics(self.run_dir / METRICS_FILE, step)
        forward_model = model
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            forward_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                    else None)
        if engine.compile:
            forward_model = torch.compile(forward_model)
        progress = _progress_for(dist, engine.steps, step, self.quiet, f"train {plugin.name}")
        started = time.monotonic()
        previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            step = self._loop(model, forward_model, optimizer, prepared.data, options, device, dist, progress,
                              step, lr_scale)
        except Interrupted:
            progress.close()
            raise GencliError(f"interrupted; checkpoint saved. Resume with: gencli train {plugin.name} "
                              f"--out {self.run_dir} --resume") from None
        except torch.OutOfMemoryError:
            progress.close()
            raise GencliError(f"out of memory on {device} at batch size {engine.batch_size // dist.world} per "
                              f"process; try --batch-size {max(1, engine.batch_size // 2)}") from None
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            progress.close()
        wall = time.monotonic() - started
        if dist.is_main:
            self._finish(model, config, prepared.description, device, wall)
        if dist.world > 1:
            import torch.distributed as torch_dist

            torch_dist.barrier()
            torch_dist.destroy_process_group()

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True  # acted on at the next step boundary, where a checkpoint is consistent

    def _start_run_folder(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (checkpoint.STATE_DIR, METRICS_FILE):  # a run started afresh with the launcher's spec
            path = self.run_dir / stale
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        atomic_write(self.run_dir / RUN_FILE, (self.spec.to_json() + "\n").encode())

    def _loop(self, model: Any, forward_model: Any, optimizer: Any, data: Any, options: Any, device: Any,
              dist: Distributed, progress: Any, step: int, lr_scale: float) -> int:
        import torch

        engine = self.spec.engine
        autocast = self._autocast(device)
        local_batch = engine.batch_size // dist.world
        sums: dict[str, float] = {}
        count, window_started, rollbacks = 0, time.monotonic(), 0
        model.train()
        while step < engine.steps:
            batch = data.batch(batch_generator(engine.seed, step), engine.batch_size)
            batch = to_device(shard(batch, dist.rank, dist.world), device)
            lr = lr_at(step, engine) * lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                loss, metrics = self.plugin.loss(forward_model, batch, options)
            if not _all_finite(loss, dist):
                if engine.on_nonfinite == "rollback" and rollbacks < MAX_ROLLBACKS and \
                        checkpoint.latest_step(self.run_dir) is not None:
                    rollbacks += 1
                    snapshot = checkpoint.restore(self.run_dir, model, optimizer)
                    step, lr_scale = snapshot.step, lr_scale * 0.5
                    progress.message(f"non-finite loss at step {step}: rolled back to step {snapshot.step}, "
                                     f"lr scale now {lr_scale:g}")
                    continue
                last = checkpoint.latest_step(self.run_dir)
                kept = f"last good checkpoint: step {last}" if last is not None else "no checkpoint was written"
                raise GencliError(f"loss became {float(loss)} at step {step} (lr {lr:.3g}); stopped, {kept}. "
                                  "Try a lower --lr or --on-nonfinite rollback")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if engine.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), engine.grad_clip)
            optimizer.step()
            step += 1
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            count += 1
            interrupted = _any_rank(self.interrupted, dist)
            if step % engine.log_every == 0 or step == engine.steps or interrupted:
                seconds = time.monotonic() - window_started
                logged = {k: v / count for k, v in sums.items()}
                logged["lr"] = lr
                logged["items_per_s"] = count * engine.batch_size / max(seconds, 1e-9)
                if dist.is_main:
                    _append_metrics(self.run_dir / METRICS_FILE, step, logged)
                progress.update(step, {k: logged[k] for k in ("loss", "items_per_s") if k in logged})
                sums, count, window_started = {}, 0, time.monotonic()
            if step % engine.save_every == 0 or step == engine.steps or interrupted:
                if dist.is_main:
                    checkpoint.save(self.run_dir, model, optimizer, checkpoint.Snapshot(step, lr_scale, {}))
                    save_model(self.run_dir, self.plugin, model, self.config)
                    report.write_loss_curve(self.run_dir / METRICS_FILE, self.run_dir / "loss.png")
                checkpoint._fault_point(f"after-save-{step}")
            checkpoint._fault_point(f"step-{step}")
            if interrupted:
                raise Interrupted
        return step

    def _finish(self, model: Any, config: Any, data_description: str, device: Any, wall: float) -> None:
        from gencli.evaluation import evaluate_loaded
        from gencli.plugin import EvalRequest

        options = self.plugin.EvalOptions()
        metrics = evaluate_loaded(self.plugin, model, config, options,
                                  EvalRequest(self.spec.data, device, self.spec.engine.seed))
        report.write_model_card(self.run_dir, self.plugin, self.spec, config, data_description, metrics, wall)
        if not self.quiet:
            figures = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"run folder: {self.run_dir}  ({figures})", file=sys.stderr)


def _progress_for(dist: Distributed, total: int, start: int, quiet: bool, description: str) -> Any:
    from gencli.progress import TrainingProgress

    return TrainingProgress(total, start, quiet=quiet or not dist.is_main, description=description)


def _all_finite(loss: Any, dist: Distributed) -> bool:
    import torch

    finite = torch.isfinite(loss.detach()).all()
    if dist.world == 1:
        return bool(finite)
    import torch.distributed as torch_dist

    flag = finite.to(torch.float32).reshape(1).to(loss.device)
    torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MIN)  # every rank must take the same branch
    return bool(flag.item() > 0)


def _any_rank(value: bool, dist: Distributed) -> bool:
    if dist.world == 1:
        return value
    import torch
    import torch.distributed as torch_dist

    flag = torch.tensor([1.0 if value else 0.0])
    torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
    return bool(flag.item() > 0)


def _append_metrics(path: Path, step: int, metrics: dict[str, float]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, "time": round(time.time(), 3), **metrics}) + "\n")


def _trim_metrics(path: Path, step: int) -> None:
    """On resume, drop lines logged after the checkpoint: those steps are about to run again."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and _line_step(line) <= step]
    atomic_write(path, ("\n".join(kept) + "\n" if kept else "").encode())


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError):
        return 1 << 62
