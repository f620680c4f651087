"""The shared training engine: one loop for every plugin, resumable bit for bit, observable, distributable.

The plugin supplies data (``prepare``), a model (``build``) and an objective (``loss``); the engine owns
everything else: devices and precision, the optimiser and learning-rate schedule, gradient clipping,
non-finite-loss handling, progress, metrics, checkpoints, resume, SIGINT, the model card and DDP.

Read ``Trainer._run`` and ``Trainer._loop`` top to bottom; the schedule and batches are in ``gencli.schedule``,
the torch.distributed plumbing in ``gencli.distributed``, and settling a run and starting workers in
``gencli.launch``.

Rules a run follows (each one is what makes "resumed == uninterrupted" hold bit for bit):

* The learning rate is a function of the step alone (``gencli.schedule.lr_at``): warm-up, then a cosine to lr/10 over the
  run's ``decay_steps``, then flat. ``--steps`` only says where to stop, so ``--resume --steps 400`` on a run
  started with ``--steps 200`` is exactly the run started with ``--steps 400``. ``decay_steps`` is settled when
  the run starts (the recipe's length by default) and never changes on resume.
* A checkpoint holds everything the next step reads: weights, optimiser state, the lr scale left by
  rollbacks and every RNG state, taken at a step boundary. Nothing between a checkpoint and the next step
  draws random numbers, so restoring it continues the very same stream.
* A run killed before its first checkpoint resumes from step 0: the initial weights come from the seed.
* All ranks of a distributed run share one RNG stream (as Megatron-LM does for data-parallel ranks), so the
  rank-0 checkpoint restores every rank. Only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from gencli import checkpoint, faults, report
from gencli.distributed import Distributed, agree, average_gradients, init_distributed, mean_over_ranks, shard
from gencli.errors import GencliError, Terminated, UsageError, signal_exit_code, stopped_by
from gencli.files import atomic_write
from gencli.runspec import RUN_FILE, RunSpec, shell_quote
from gencli.schedule import batch_generator, describe_schedule, lr_at
from gencli.weights import save_model

METRICS_FILE = "metrics.jsonl"
MAX_ROLLBACKS = 3
LAUNCHED_ENV = "GENCLI_LAUNCHED"  # set by the --nproc launcher for its workers


class Interrupted(GencliError):
    """Ctrl-C or SIGTERM: the run saved a checkpoint at a step boundary and stopped (exit code 128 + signal)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.exit_code = signal_exit_code(signum)


def resume_command(plugin: Any, run_dir: Path) -> str:
    return f"gencli train {plugin.name} --out {shell_quote(str(run_dir))} --resume"


def to_device(batch: Any, device: Any) -> Any:
    if hasattr(batch, "to"):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


# ---- the loop -----------------------------------------------------------------------------------------


class Trainer:
    def __init__(self, plugin: Any, spec: RunSpec, run_dir: Path, *, resume: bool, quiet: bool) -> None:
        self.plugin, self.spec, self.run_dir, self.resume = plugin, spec, run_dir, resume
        self.quiet = quiet
        self.interrupted = False
        self.stop_signal = signal.SIGINT
        self.evaluate_at_end = True  # the benchmark turns this off: it times training only
        self.loop_seconds = 0.0  # wall time of the step loop in this session (for benchmarks/engine_overhead)
        self.loop_cpu_seconds = 0.0  # this process's CPU time in that loop (a shared machine inflates the wall)
        self.steps_run = 0

    # -- setup --

    def _device(self, dist: Distributed) -> Any:
        import torch

        from gencli.device import resolve_device, set_threads

        device = resolve_device(self.spec.engine.device)
        set_threads(self.spec.engine.threads, device, "train")
        if device.type == "cuda" and dist.world > 1:
            device = torch.device("cuda", dist.local_rank)
        return device

    def _precision(self, device: Any, dist: Distributed) -> None:
        """Settle --precision for this plugin on this device (gencli.precision), record it for run.json and the
        model card, and warn once where bf16 was asked for on a CPU that only emulates it."""
        from gencli import messages, precision

        self.precision = precision.resolve(self.spec.engine.precision, device.type, self.plugin)
        self.spec.resolved = {"precision": self.precision.name, "precision_reason": self.precision.reason}
        if self.precision.warning and dist.is_main and not self.quiet:
            messages.warn(self.precision.warning)

    def _autocast(self, device: Any) -> Any:
        import contextlib

        import torch

        if self.precision.name == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _optimizer(self, model: Any, options: Any) -> Any:
        import torch

        configure = getattr(self.plugin, "configure_optimizer", None)
        if configure is not None:
            return configure(model, self.spec.engine.lr, options)
        return torch.optim.AdamW(model.parameters(), lr=self.spec.engine.lr, betas=(0.9, 0.99), weight_decay=0.0)

    # -- run --

    def run(self) -> None:
        dist = init_distributed(self.spec.engine.device)
        if dist.world == 1:
            self._run(dist)
            return
        import gc

        import torch.distributed as torch_dist

        try:
            self._run(dist)
            torch_dist.barrier()  # every rank is done before any tears the group down
        except BaseException as error:
            traceback.clear_frames(error.__traceback__)  # frees the model the failed frames still hold
            raise
        finally:
            # The DDP model and its pending gloo work must be gone before the group is destroyed: left to
            # interpreter shutdown, gloo's threads can abort the process ("terminate called without an
            # active exception"), which torchrun reports as a failed run.
            gc.collect()
            torch_dist.destroy_process_group()

    def _run(self, dist: Distributed) -> None:
        import torch

        from gencli.device import seed_everything

        engine = self.spec.engine
        device = self._device(dist)
        self._precision(device, dist)
        if engine.batch_size % dist.world:
            raise UsageError(f"--batch-size {engine.batch_size} must divide evenly across {dist.world} processes")
        seed_everything(engine.seed)
        plugin = self.plugin
        options = plugin.TrainOptions(**self.spec.options)
        prepared = plugin.prepare(self.spec.data, plugin.Config(**self.spec.config), options)
        config = self.config = prepared.config
        model = plugin.build(config).to(device)
        initialize = getattr(plugin, "initialize", None)
        if initialize is not None and not (self.resume and checkpoint.latest_step(self.run_dir) is not None):
            initialize(model, options)  # a fresh run's starting weights (e.g. another run's, to fine-tune)
        optimizer = self._optimizer(model, options)
        step, lr_scale, wall_before, note = 0, 1.0, 0.0, ""
        if self.resume and checkpoint.latest_step(self.run_dir) is not None:
            snapshot = checkpoint.restore(self.run_dir, model, optimizer)
            step, lr_scale, note = snapshot.step, snapshot.lr_scale, snapshot.note
            wall_before = float(snapshot.extra.get("wall_seconds", 0.0))
            if step > engine.steps:
                raise UsageError(f"--resume: the run is already at step {step}; --steps {engine.steps} would "
                                 f"undo training (give --steps {step} or more)")
        elif self.resume:
            note = "no checkpoint was written before the run stopped; starting again from step 0"
        self.wall_before = wall_before
        if dist.is_main:
            with _writing("the run folder"):
                self._prepare_run_folder(step)
                save_model(self.run_dir, plugin, model, config)  # config.json first: the folder is loadable early
                if engine.on_nonfinite == "rollback" and step == 0:
                    # Rollback needs somewhere to go back to, even before the first periodic checkpoint.
                    checkpoint.save(self.run_dir, model, optimizer, self._snapshot(0, lr_scale, 0.0))
        if dist.world > 1:
            import torch.distributed as torch_dist

            torch_dist.barrier()  # no rank reads the folder while rank 0 is still setting it up
        forward_model = model
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            forward_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=bool(getattr(plugin, "find_unused_parameters", False)))
        sets_gradients = getattr(plugin, "gradients", None) is not None
        if engine.compile and not sets_gradients:
            forward_model = torch.compile(forward_model)
        work = getattr(plugin, "training_work", None)
        progress = _progress_for(dist, engine.steps, step, self.quiet, f"train {plugin.name}",
                                 describe_schedule(engine), None if work is None else work(options))
        if engine.compile and sets_gradients:
            progress.message(f"--compile has no effect: {plugin.name} computes its gradients itself, without the "
                             "model's forward")
        if note:
            progress.message(note)
        self.session_started = time.monotonic()
        # SIGTERM (a scheduler's polite stop) too, but not under torchrun, which uses it to tear workers down.
        handled = [signal.SIGINT] + ([signal.SIGTERM] if dist.world == 1 else [])
        if threading.current_thread() is not threading.main_thread():
            handled = []  # Python delivers signals to the main thread only; Trainer used from another thread
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            step = self._loop(model, forward_model, optimizer, prepared.data, options, device, dist, progress,
                              step, lr_scale)
        except Interrupted:
            progress.close()
            if os.environ.get(LAUNCHED_ENV) == "1":
                # A worker: exit quietly and successfully, so torchrun adds no failure report of its own; the
                # launcher sees the run short of its steps and tells the user how to resume, once.
                raise SystemExit(0) from None
            raise
        except torch.OutOfMemoryError:
            progress.close()
            raise GencliError(f"out of memory on {device} at batch size {engine.batch_size // dist.world} per "
                              f"process; try --batch-size {max(1, engine.batch_size // 2)}") from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            progress.close()
        if dist.is_main and self.evaluate_at_end:
            self._finish(model, config, prepared.description, device, self._wall())

    def _wall(self) -> float:
        """Training wall time over every session of the run (saved in each checkpoint)."""
        return self.wall_before + (time.monotonic() - self.session_started)

    def _snapshot(self, step: int, lr_scale: float, wall: float) -> checkpoint.Snapshot:
        return checkpoint.Snapshot(step, lr_scale, {"wall_seconds": round(wall, 3)})

    def _on_signal(self, signum: int, frame: Any) -> None:
        # A second Ctrl-C means "now": the checkpoint files are atomic, so stopping mid-write loses nothing.
        # Workers never escalate: the launcher itself kills them all on a second Ctrl-C.
        if self.interrupted and os.environ.get(LAUNCHED_ENV) != "1":
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.interrupted = True  # acted on at the next step boundary, where a checkpoint is consistent
        self.stop_signal = signum

    def _prepare_run_folder(self, step: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if step == 0:
            # A new run (or one resumed before its first checkpoint): nothing of an earlier attempt stays.
            for stale in (checkpoint.STATE_DIR, METRICS_FILE, "loss.png"):
                path = self.run_dir / stale
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        else:
            _trim_metrics(self.run_dir / METRICS_FILE, step)
        # run.json always holds the settings in force: a later --resume without flags continues this plan.
        atomic_write(self.run_dir / RUN_FILE, (self.spec.to_json() + "\n").encode())

    def _loop(self, model: Any, forward_model: Any, optimizer: Any, data: Any, options: Any, device: Any,
              dist: Distributed, progress: Any, step: int, lr_scale: float) -> int:
        import torch

        engine = self.spec.engine
        autocast = self._autocast(device)
        parameters = [p for p in model.parameters() if p.requires_grad]
        # A plugin that sets its gradients itself (plugin.OptionalMembers.gradients) skips autograd.
        set_gradients = getattr(self.plugin, "gradients", None)
        sums: dict[str, float] = {}
        count, window_started, rollbacks = 0, time.monotonic(), 0
        loop_started, first_step = (time.monotonic(), time.process_time()), step
        model.train()
        while step < engine.steps:
            batch = data.batch(batch_generator(engine.seed, step), engine.batch_size)
            batch = to_device(shard(batch, dist.rank, dist.world), device)
            lr = lr_at(step, engine) * lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            if set_gradients is not None:
                with autocast, torch.no_grad():
                    loss, metrics = set_gradients(model, batch, options)
            else:
                with autocast:
                    loss, metrics = self.plugin.loss(forward_model, batch, options)
            if faults.hooks.nonfinite_loss(step + 1):
                loss = loss * float("nan")  # the engine's tests (gencli.faults): this step's loss turns NaN
            # The one host sync per step: the loss value both feeds the metrics and decides whether to update.
            loss_value = float(loss.detach())
            nonfinite, interrupted = agree(not math.isfinite(loss_value), self.interrupted, dist)
            if nonfinite:
                last = checkpoint.latest_step(self.run_dir)
                if engine.on_nonfinite == "rollback" and rollbacks < MAX_ROLLBACKS and last is not None:
                    rollbacks += 1
                    snapshot = checkpoint.restore(self.run_dir, model, optimizer)
                    lr_scale *= 0.5
                    progress.message(f"non-finite loss ({loss_value}) at step {step + 1}: rolled back to step "
                                     f"{snapshot.step} with the lr scaled by {lr_scale:g}")
                    step = snapshot.step
                    if dist.is_main:
                        with _writing(METRICS_FILE):
                            _trim_metrics(self.run_dir / METRICS_FILE, step)
                    sums, count, window_started = {}, 0, time.monotonic()
                    continue
                kept = (f"the last good checkpoint (step {last}) is kept in {self.run_dir}" if last is not None
                        else "no checkpoint was written")
                if not dist.is_main:
                    raise SystemExit(1)  # every rank stops here; rank 0 alone tells the user
                tried = f" after {rollbacks} rollback(s)" if rollbacks else ""
                hint = ("try a lower --lr" if engine.on_nonfinite == "rollback"
                        else "try a lower --lr or --on-nonfinite rollback")
                raise GencliError(f"loss became {loss_value} at step {step + 1} (lr {lr:.3g}){tried}; stopped, "
                                  f"{kept}; {hint}")
            if set_gradients is None:
                loss.backward()  # under DDP this also averages the gradients over processes
            elif dist.world > 1:
                average_gradients(parameters, dist.world)
            if engine.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(parameters, engine.grad_clip)
            optimizer.step()
            step += 1
            sums["loss"] = sums.get("loss", 0.0) + loss_value
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            count += 1
            last_step = step == engine.steps
            if step % engine.log_every == 0 or last_step or interrupted:
                seconds = time.monotonic() - window_started
                logged = {k: v / count for k, v in mean_over_ranks(sums, dist).items()}
                logged["lr"] = lr
                logged["items_per_s"] = count * engine.batch_size / max(seconds, 1e-9)
                if dist.is_main:
                    with _writing(METRICS_FILE):
                        _append_metrics(self.run_dir / METRICS_FILE, step, logged)
                progress.update(step, {k: logged[k] for k in ("loss", "items_per_s") if k in logged})
                sums, count, window_started = {}, 0, time.monotonic()
            if step % engine.save_every == 0 or last_step or interrupted:
                if dist.is_main:
                    checkpoint.save(self.run_dir, model, optimizer, self._snapshot(step, lr_scale, self._wall()))
                    with _writing("the run folder"):
                        save_model(self.run_dir, self.plugin, model, self.config)
                        report.write_loss_curve(self.run_dir / METRICS_FILE, self.run_dir / "loss.png")
                faults.hooks.kill_point("after-save", step)
            faults.hooks.kill_point("step", step)
            if interrupted:
                self._record_loop(loop_started, step - first_step)
                raise Interrupted(f"{stopped_by(self.stop_signal)} at step {step}; checkpoint saved. Resume with: "
                                  f"{resume_command(self.plugin, self.run_dir)}", self.stop_signal)
        self._record_loop(loop_started, step - first_step)
        return step

    def _record_loop(self, started: tuple[float, float], steps: int) -> None:
        self.loop_seconds, self.steps_run = time.monotonic() - started[0], steps
        self.loop_cpu_seconds = time.process_time() - started[1]

    def _finish(self, model: Any, config: Any, data_description: str, device: Any, wall: float) -> None:
        from gencli.evaluation import evaluate_loaded
        from gencli.plugin import EvalRequest

        preset = self.plugin.presets.get(self.spec.preset) if self.spec.preset else None
        options = self.plugin.EvalOptions(**(dict(preset.evaluate) if preset else {}))
        scored: list[str] = []  # what the plugin says it scored
        metrics = evaluate_loaded(self.plugin, model, config, options,
                                  EvalRequest(self.spec.data, device, self.spec.engine.seed,
                                              describe_data=scored.append))
        with _writing("the model card"):
            report.write_model_card(self.run_dir, self.plugin, self.spec, config, data_description, metrics, wall,
                                    "; ".join(scored))
        if not self.quiet:
            figures = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"run folder: {self.run_dir}  ({figures})", file=sys.stderr)


class _writing:
    """Turn an OSError while writing run-folder files into a one-line error that names what failed."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        if isinstance(error, OSError):
            raise GencliError(f"could not write {self.what}: {error.strerror or error} "
                              f"({error.filename or 'run folder'})") from None
        return False


def _progress_for(dist: Distributed, total: int, start: int, quiet: bool, description: str, schedule: str,
                  work: Any = None) -> Any:
    from gencli.progress import TrainingProgress

    return TrainingProgress(total, start, quiet=quiet or not dist.is_main, description=description,
                            detail=schedule, work=work)


def _append_metrics(path: Path, step: int, metrics: dict[str, float]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, "time": round(time.time(), 3), **metrics}) + "\n")


def _trim_metrics(path: Path, step: int) -> None:
    """On resume or rollback, drop lines logged after the checkpoint: those steps are about to run again."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and _line_step(line) <= step]
    atomic_write(path, ("\n".join(kept) + "\n" if kept else "").encode())


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a line cut short by a crash: dropped
