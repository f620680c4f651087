"""--nproc 2 on the CPU (gloo, torchrun started by the engine) matches one process with the same global
batch, and only rank 0 writes to the run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from test_engine_common import metrics, train, weights

from conftest import gencli_env, run_gencli

# The tolerance, stated: float32 sums in another order (two half-batch means averaged by all-reduce instead
# of one full-batch mean) differ in the last bits; after 12 Adam steps the weights agree to ~1e-8 here. 1e-5
# leaves room for other CPUs' kernels while staying far below what training changes: the test also checks
# that the last 4 steps alone moved some weight by more than 100 x the tolerance.
TOLERANCE = 1e-5

# Installed into every Python process of the run through PYTHONPATH: an audit hook that records each
# write-side file-system call under the run folder with the process's torchrun rank ("-" for the launcher).
AUDIT = r'''
import atexit, os, sys
_root = os.environ["AUDIT_ROOT"]
_log = []
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (mode and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE)
        if not writing:
            return
    elif event not in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"):
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        path = os.fsdecode(path)
        if os.path.abspath(path).startswith(_root):
            _log.append(f"{os.environ.get('RANK', '-')} {os.getpid()} {event} {path}")

def _dump():  # the log goes outside the run folder, so writing it records nothing
    if _log:
        with open(os.path.join(os.environ["AUDIT_LOG"], f"{os.getpid()}.log"), "w") as f:
            f.write("\n".join(_log) + "\n")

sys.addaudithook(_hook)
atexit.register(_dump)
'''


def test_two_processes_match_one_and_only_rank_0_writes(tmp_path: Path):
    hook, log = tmp_path / "hook", tmp_path / "audit"
    hook.mkdir(), log.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT)
    args = ("--preset", "tiny", "--steps", "12", "--batch-size", "8", "--save-every", "4", "--log-every", "2", "-q")
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    env = gencli_env(PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
                     AUDIT_ROOT=str(ddp.resolve()), AUDIT_LOG=str(log))
    process = run_gencli("train", "charrnn", *args, "--nproc", "2", "--out", str(ddp), env=env)
    assert process.returncode == 0, process.stderr
    train(single, *args)

    import torch

    a, b = weights(ddp), weights(single)
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= TOLERANCE, f"--nproc 2 differs from one process by {worst:g}"
    earlier = checkpoint_weights(ddp, 8)  # KEEP=2: the checkpoints of steps 8 and 12 remain
    moved = max((a[k] - earlier[k]).abs().max().item() for k in a)
    assert moved > 100 * TOLERANCE, f"training moved the weights by only {moved:g}: the comparison is weak"
    rows_ddp, rows_single = metrics(ddp), metrics(single)
    assert [r["step"] for r in rows_ddp] == [r["step"] for r in rows_single] == [2, 4, 6, 8, 10, 12]
    for x, y in zip(rows_ddp, rows_single):  # logged losses are the global batch's (averaged over ranks)
        assert abs(x["loss"] - y["loss"]) <= 1e-5 and x["lr"] == y["lr"], (x, y)
    assert json.loads((ddp / "training_state" / "latest.json").read_text())["step"] == 12
    assert torch.isfinite(torch.cat([t.flatten() for t in a.values()])).all()

    # Who wrote to the run folder: the launcher (run.json) and rank 0, never rank 1.
    entries = [line.split(" ", 3) for f in log.glob("*.log") for line in f.read_text().splitlines()]
    writers = {rank for rank, _, _, _ in entries}
    assert "1" not in writers, [e for e in entries if e[0] == "1"][:5]
    assert writers == {"-", "0"}, writers
    rank0 = [path for rank, _, _, path in entries if rank == "0"]
    assert any("training_state" in p for p in rank0) and any(p.endswith("metrics.jsonl") for p in rank0)
    assert len({pid for rank, pid, _, _ in entries if rank == "0"}) == 1, "one checkpoint writer process"


def checkpoint_weights(run_dir: Path, step: int) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "training_state" / f"step-{step:08d}" / "model.safetensors"))


# One rank of the check below: gradients set by hand (rank 0: all 1, rank 1: all 2), averaged by the engine.
AVERAGING_RANK = r'''
import sys
import torch
import torch.distributed as torch_dist
from gencli.distributed import average_gradients
rank, port = int(sys.argv[1]), sys.argv[2]
torch_dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
parameter = torch.nn.Parameter(torch.zeros(3))
parameter.grad = torch.full((3,), float(rank + 1))
average_gradients([parameter], 2)
print(parameter.grad.tolist())
torch_dist.destroy_process_group()
'''


def test_gradients_a_plugin_sets_itself_are_averaged_over_processes() -> None:
    """DDP averages gradients during backward; for plugin.gradients (no backward) the engine all-reduces them."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ranks = [subprocess.Popen([sys.executable, "-c", AVERAGING_RANK, str(rank), str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=gencli_env()) for rank in range(2)]
    outputs = [rank.communicate(timeout=120) for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["[1.5, 1.5, 1.5]"] * 2
