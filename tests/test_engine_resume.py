"""Resuming is exact: after SIGKILL at seeded points, after Ctrl-C, when extending --steps, and after a
checkpoint write that the kernel refused, the final weights equal an uninterrupted run's bit for bit."""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_engine_common import (
    TINY,
    assert_same_weights,
    error_lines,
    latest,
    metric_steps,
    metrics,
    same_weights,
    train,
)

from conftest import gencli_env

STEPS, SAVE, LOG = 20, 5, 5
RUN = (*TINY, "--steps", str(STEPS), "--save-every", str(SAVE), "--log-every", str(LOG), "-q")


def kill_points(seed: int = 1729) -> list[tuple[str, ...]]:
    """Where to SIGKILL, drawn from a fixed seed so failures replay. Each entry is one lineage: its faults
    hit successive sessions (kill, resume and kill again, ...), then a last session runs to the end."""
    rng = random.Random(seed)
    saves = list(range(SAVE, STEPS + 1, SAVE))  # 5, 10, 15, 20 (the last is the final checkpoint)
    between = [s for s in range(1, STEPS) if s % SAVE]
    mid, other = rng.sample([s for s in between if s > SAVE], 2)
    return [
        (f"step-{mid}",),  # mid-interval, after a checkpoint: those steps run again from the restored state
        (f"checkpoint-write-{saves[0]}",),  # inside the first checkpoint write: resume from step 0
        (f"checkpoint-write-{rng.choice(saves[1:])}",),  # inside a later write: the previous one holds
        (f"checkpoint-before-pointer-{rng.choice(saves)}",),  # folder in place, pointer not yet moved
        (f"after-save-{rng.choice(saves[:-1])}",),  # just after a complete checkpoint
        (f"step-{other}", f"checkpoint-write-{saves[-1]}"),  # killed twice, the 2nd in the last write
    ]


KILL_POINTS = kill_points()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    train(out, *RUN)
    return out


def pointer(run_dir: Path) -> int | None:
    return latest(run_dir) if (run_dir / "training_state" / "latest.json").exists() else None


def assert_killed_at(run_dir: Path, fault: str) -> None:
    """The kill happened where it was asked to: check the checkpoint folder's state at that instant."""
    point, step = fault.rsplit("-", 1)
    step = int(step)
    state = run_dir / "training_state"
    previous = (step - 1) // SAVE * SAVE or None  # the checkpoint in charge before this step's one
    if point == "step":
        assert pointer(run_dir) == (step // SAVE * SAVE or None)
    elif point == "after-save":
        assert pointer(run_dir) == step
    elif point == "checkpoint-write":
        assert pointer(run_dir) == previous and list(state.glob(f".tmp-step-{step:08d}-*")), "not mid-write"
    elif point == "checkpoint-before-pointer":
        assert pointer(run_dir) == previous and (state / f"step-{step:08d}").is_dir()


@pytest.mark.parametrize("faults", KILL_POINTS, ids=["+".join(f) for f in KILL_POINTS])
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path, reference: Path, faults: tuple[str, ...]):
    out = tmp_path / "run"
    for session, fault in enumerate(faults):
        killed = train(out, *(RUN if session == 0 else ("--resume", "-q")), fault=fault, expect=None)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert_killed_at(out, fault)
    resumed = train(out, "--resume", "-q")
    assert resumed.stderr == ""
    assert_same_weights(out, reference)
    # The log neither repeats the steps that ran twice nor misses any.
    assert metric_steps(out) == metric_steps(reference) == list(range(LOG, STEPS + 1, LOG))
    assert latest(out) == STEPS
    assert not list((out / "training_state").glob(".tmp-*")), "a crashed write was left behind"


def test_resume_without_rng_state_differs(tmp_path: Path, reference: Path):
    """The control: the first kill above, resumed without restoring the RNG state (the dropout masks then
    differ), must not match the uninterrupted run. This is what proves the tests above can fail."""
    control = tmp_path / "control"
    train(control, *RUN, fault=KILL_POINTS[0][0], expect=-signal.SIGKILL)
    assert latest(control) > 0, "the kill came before any checkpoint: nothing would be restored"
    train(control, "--resume", "-q", fault="no-rng-restore")
    assert not same_weights(control, reference), "skipping the RNG restore changed nothing: the test is blind"


def test_sigint_saves_a_checkpoint_and_resume_completes_the_run(tmp_path: Path):
    # --steps far beyond reach, so Ctrl-C always lands mid-run however fast the machine is; the resume then
    # sets the end (the schedule never reads --steps, so that is the same run as one started with that end).
    args = (*TINY, "--save-every", "200", "--log-every", "10")
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "gencli", "train", "charrnn", *args, "--steps", "1000000", "--out", str(out)],
        env=gencli_env(), stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in process.stderr:  # wait until training is under way, then press Ctrl-C
        seen.append(line)
        if line.startswith("step "):
            process.send_signal(signal.SIGINT)
            break
    rest = process.stderr.read()
    process.wait(timeout=120)
    stderr = "".join(seen) + rest
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    errors = error_lines(stderr)
    assert len(errors) == 1 and stderr.rstrip().endswith(errors[0]), stderr
    step = latest(out)  # the checkpoint taken at the interruption, not a periodic one
    assert step >= 10, stderr
    assert errors[0] == (f"gencli: error: interrupted at step {step}; checkpoint saved. "
                         f"Resume with: gencli train charrnn --out {out} --resume")

    end = step + 30
    train(out, "--resume", "--steps", str(end), "-q")  # the command the message gives, with an end
    straight = tmp_path / "straight"
    train(straight, *args, "--steps", str(end), "-q")
    assert_same_weights(out, straight)
    logged = metric_steps(out)
    assert logged == sorted(set(logged)) and logged[-1] == end, "duplicated, unordered or missing metrics lines"


def test_extending_steps_on_resume_equals_a_straight_run(tmp_path: Path):
    """--steps 200, then --resume --steps 400, equals --steps 400: the lr schedule never reads --steps."""
    args = (*TINY, "--log-every", "10", "-q")
    r1, straight = tmp_path / "r1", tmp_path / "straight"
    train(r1, *args, "--steps", "200")
    png_before = (r1 / "loss.png").read_bytes()
    refused = train(r1, "--resume", "--steps", "100", "-q", expect=2)  # fewer steps than done: refused
    assert error_lines(refused.stderr) == [refused.stderr.strip()] and "already at step 200" in refused.stderr
    train(r1, "--resume", "--steps", "400", "-q")
    quiet = train(straight, *args, "--steps", "400")
    assert quiet.stderr == "" and quiet.stdout == b"", "-q must silence a run completely"
    assert_same_weights(r1, straight)
    # Same losses and learning rates at every logged step, not only the same end point.
    assert [(r["step"], r["loss"], r["lr"]) for r in metrics(r1)] == \
        [(r["step"], r["loss"], r["lr"]) for r in metrics(straight)]
    assert (r1 / "loss.png").read_bytes() != png_before, "loss.png was not refreshed"
    run = json.loads((r1 / "run.json").read_text())
    assert run["engine"]["steps"] == 400
    assert run["resumed"] == [f"gencli train charrnn --resume --steps 400 -q --out {r1}"]
    card = (r1 / "README.md").read_text()
    assert run["command"] in card and run["resumed"][0] in card


def _limit_file_size(limit: int):
    def apply() -> None:
        # A real write failure, even for root (which chmod cannot stop): the kernel refuses to grow any file
        # past `limit` bytes (EFBIG). Python ignores SIGXFSZ, so the write raises OSError instead of killing.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_unwritable_checkpoint_keeps_the_last_good_one(tmp_path: Path, reference: Path):
    out = tmp_path / "run"
    train(out, *TINY, "--steps", "10", "--save-every", str(SAVE), "--log-every", str(LOG), "-q")
    assert latest(out) == 10
    good = (out / "training_state" / "step-00000010" / "model.safetensors").read_bytes()
    # Big enough for the weights (so the run itself starts), too small for the optimiser's moments (2x).
    limit = (out / "model.safetensors").stat().st_size + 4096
    process = subprocess.run(
        [sys.executable, "-m", "gencli", "train", "charrnn", "--out", str(out), "--resume", "--steps", str(STEPS)],
        env=gencli_env(), capture_output=True, text=True, preexec_fn=_limit_file_size(limit), timeout=300)
    assert process.returncode == 1, process.stderr
    errors = error_lines(process.stderr)
    assert len(errors) == 1 and "Traceback" not in process.stderr, process.stderr
    assert "could not write the checkpoint at step 15" in errors[0]
    assert "File too large" in errors[0] and "last good checkpoint (step 10) is kept" in errors[0]
    # The last good checkpoint is intact and still in charge; the failed write left nothing behind.
    assert latest(out) == 10
    assert (out / "training_state" / "step-00000010" / "model.safetensors").read_bytes() == good
    assert not list((out / "training_state").glob(".tmp-*"))
    assert not (out / "training_state" / "step-00000015").exists()
    # With room again, the run resumes from it to exactly the uninterrupted result.
    train(out, "--resume", "-q")
    assert_same_weights(out, reference)
