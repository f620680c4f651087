"""`gencli train`: settle the run (new, or resumed with its own settings), then train in this process or start
torchrun workers that each read the settled run.json. ``python -m gencli.launch`` is how a worker starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from gencli import checkpoint
from gencli.errors import GencliError, UsageError, debugging, stopped_by
from gencli.files import atomic_write
from gencli.options import Flag
from gencli.runspec import ENGINE_FIELDS, RUN_FILE, RunSpec, check_engine, load_run, requested_settings, resolve
from gencli.train import LAUNCHED_ENV, Interrupted, Trainer, resume_command

WORKER_ENV = "GENCLI_WORKER"  # the launcher's job for its workers (JSON: run folder, resume, quiet)
# Settings that shape what a run computes: changing them on resume would make it another run, and a resumed run
# must equal an uninterrupted one. (--steps, --save-every, --device, ... may change.)
FIXED_ON_RESUME = {"data", "preset", "seed", "batch_size", "decay_steps", "warmup_steps", "lr", "grad_clip",
                   "precision"}



def launch(plugin: Any, flags: list[Flag], typed: dict[str, dict[str, Any]], *, command: str, out: Path | None,
           resume: bool, quiet: bool) -> None:
    run_dir = Path(out) if out is not None else Path("runs") / plugin.name
    if resume:
        spec = resume_spec(plugin, run_dir, typed, flags)
        spec.resumed.append(command)
    else:
        spec = resolve(plugin, typed, flags, command)
        check_new_run_folder(run_dir)
    nproc = int(spec.launcher.get("nproc", 1))
    if nproc < 1:
        raise UsageError("--nproc must be at least 1")
    if nproc > 1 or spec.launcher.get("nnodes") not in (None, "1"):
        _write_run_spec(run_dir, spec)  # the workers all read this one settled spec
        launch_workers(plugin, spec, run_dir, nproc, resume=resume, quiet=quiet)
        return
    Trainer(plugin, spec, run_dir, resume=resume, quiet=quiet).run()


def check_new_run_folder(run_dir: Path) -> None:
    """A new run goes into a new or empty folder only: the run writes README.md, config.json, ... there and
    clears training_state/, which must never be a user's files."""
    if (run_dir / RUN_FILE).is_file():
        raise UsageError(f"--out {run_dir} already holds a run; add --resume to continue it or pick another --out")
    if not os.path.lexists(run_dir):
        return
    if not run_dir.is_dir():
        raise UsageError(f"--out {run_dir}: exists and is not a folder")
    present = sorted(entry.name for entry in run_dir.iterdir())
    if present:
        shown = ", ".join(present[:4]) + (f" and {len(present) - 4} more" if len(present) > 4 else "")
        raise UsageError(f"--out {run_dir} is not empty and is not a gencli run ({shown}); train into a new or "
                         "empty folder")


def resume_spec(plugin: Any, run_dir: Path, typed: dict[str, dict[str, Any]], flags: list[Flag]) -> RunSpec:
    """The saved spec, with the few settings that may change on resume (--steps, --save-every, ...) applied.

    The run's other settings may be given again (a recalled command with --resume added), but only with the
    values the run has: a different value is refused, naming both.
    """
    spec = load_run(run_dir)
    if spec.plugin != plugin.name:
        raise UsageError(f"--resume: {run_dir} is a {spec.plugin} run, not {plugin.name}")
    requested = requested_settings(typed, flags)
    changed = []
    for group, values in requested.items():
        for key, value in values.items():
            if group == "core" and key not in FIXED_ON_RESUME:
                continue
            saved = _saved_setting(spec, group, key)
            if not _same_setting(saved, value):
                changed.append(f"--{key.replace('_', '-')} {saved} (now {value})")
    if changed:
        raise UsageError(f"--resume keeps the run's settings; {', '.join(sorted(changed))} cannot change (start a "
                         "new --out)")
    for key, value in requested.get("core", {}).items():
        if key in ENGINE_FIELDS and key not in FIXED_ON_RESUME:
            setattr(spec.engine, key, value)
        elif key in ("nproc", "nnodes", "node_rank", "rdzv_endpoint"):
            spec.launcher[key] = value
    check_engine(spec.engine)
    done = checkpoint.latest_step(run_dir)
    if done is not None and done > spec.engine.steps:  # checked here, before torch is even imported
        raise UsageError(f"--resume: the run is already at step {done}; --steps {spec.engine.steps} would undo "
                         f"training (give --steps {done} or more)")
    return spec


def _saved_setting(spec: RunSpec, group: str, key: str) -> Any:
    if group == "Config":
        return spec.config.get(key)
    if group == "TrainOptions":
        return spec.options.get(key)
    if key in ("data", "preset"):
        return getattr(spec, key)
    return getattr(spec.engine, key)


def _same_setting(saved: Any, requested: Any) -> bool:
    """run.json holds JSON: paths as strings, tuples as lists, and 1e-3 typed as 0.001 is the same number."""
    if isinstance(requested, (list, tuple)) and isinstance(saved, (list, tuple)):
        return len(saved) == len(requested) and all(map(_same_setting, saved, requested))
    if isinstance(requested, Path) or isinstance(saved, Path):
        return str(saved) == str(requested)
    if isinstance(saved, bool) or isinstance(requested, bool):
        return saved is requested  # 1 == True in Python, not in a run's settings
    return saved == requested


def launch_workers(plugin: Any, spec: RunSpec, run_dir: Path, nproc: int, *, resume: bool, quiet: bool) -> None:
    """Start ``nproc`` workers under torchrun's launcher (``python -m gencli.launch``); rank 0 writes.

    The workers do not parse the command line again: they read run.json, which this process settled. (Passing
    the user's flags through torchrun also let its argparse take ``--nproc`` for an abbreviation of its own.)
    """
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    nnodes = spec.launcher.get("nnodes")
    if nnodes in (None, "1"):
        torchrun.append("--standalone")
    else:
        torchrun += [f"--nnodes={nnodes}", "--rdzv-backend=c10d",
                     f"--rdzv-endpoint={spec.launcher.get('rdzv_endpoint') or 'localhost:29400'}"]
        if spec.launcher.get("node_rank") is not None:
            torchrun.append(f"--node-rank={spec.launcher['node_rank']}")
    job = json.dumps({"run_dir": str(run_dir), "resume": resume, "quiet": quiet})
    env = {**os.environ, LAUNCHED_ENV: "1", WORKER_ENV: job,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # torchrun and its workers get their own process group, so a Ctrl-C at the terminal reaches only this
    # process. It passes SIGINT to the workers themselves, which checkpoint at the step boundary and exit 0:
    # torchrun is never signalled, so it ends quietly instead of printing its own traceback.
    process = subprocess.Popen(torchrun + ["-m", "gencli.launch"], env=env, process_group=0)
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        workers = _children(process.pid)
        if len(received) > 1 or (not workers and Path("/proc/self").is_dir()):
            # A second Ctrl-C means "now" (checkpoints are atomic). With no worker yet, torchrun is still waiting
            # for its peers (rendezvous): nothing has trained, and stopping it any gentler makes it print a
            # traceback.
            os.killpg(process.pid, signal.SIGKILL)
        elif not workers:  # no /proc to find them in: torchrun relays a SIGINT to each worker itself
            process.send_signal(signal.SIGINT)
        else:
            for pid in workers:
                os.kill(pid, signal.SIGINT)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        returncode = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    step = checkpoint.latest_step(run_dir)
    if received or (returncode == 0 and (step or 0) < spec.engine.steps):
        signum = received[0] if received else signal.SIGINT
        what = stopped_by(signum)
        if step is None:
            raise Interrupted(f"{what} before the first checkpoint; nothing to keep. Start again with: "
                              f"{resume_command(plugin, run_dir)}", signum)
        raise Interrupted(f"{what} at step {step}; checkpoint saved. Resume with: "
                          f"{resume_command(plugin, run_dir)}", signum)
    if returncode != 0:
        raise GencliError(f"distributed training exited with code {returncode} (see messages above)")


def _children(parent: int) -> list[int]:
    """Process ids whose parent is ``parent`` (Linux /proc; empty elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # the name before ")" may hold spaces
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def worker_main() -> None:
    """One torchrun worker: train the run that the launcher settled in run.json."""
    from gencli import registry

    job = json.loads(os.environ[WORKER_ENV])
    run_dir = Path(job["run_dir"])
    try:
        spec = load_run(run_dir)
        plugin = registry.load(spec.plugin)
        Trainer(plugin, spec, run_dir, resume=job["resume"], quiet=job["quiet"]).run()
    except GencliError as error:  # as the CLI does: one line, no traceback (GENCLI_DEBUG=1 shows it)
        if debugging():
            raise
        print(f"gencli: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def _write_run_spec(run_dir: Path, spec: RunSpec) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / RUN_FILE, (spec.to_json() + "\n").encode())


if __name__ == "__main__":  # `python -m gencli.launch`: how launch_workers starts each worker
    from gencli.launch import worker_main as _worker_main  # the package's module, not this __main__ copy

    _worker_main()
