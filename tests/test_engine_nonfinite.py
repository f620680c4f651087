"""A NaN/Inf loss stops the run keeping the last good checkpoint, or (--on-nonfinite rollback) rolls back to
it with a smaller learning rate."""

from __future__ import annotations

import json
import math
from pathlib import Path

from test_engine_common import TINY, error_lines, latest, metric_steps, metrics, train, weights


def _finite(run_dir: Path) -> bool:
    import torch

    return all(torch.isfinite(t).all() for t in weights(run_dir).values())


def _checkpoint_weights_equal_run_weights(run_dir: Path, step: int) -> bool:
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(run_dir / "training_state" / f"step-{step:08d}" / "model.safetensors"))
    current = weights(run_dir)
    return all(torch.equal(saved[k], current[k]) for k in saved)


def test_real_blow_up_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path):
    """lr 1e38 overflows float32 within two steps (no fault injection): stop with one line naming the step."""
    out = tmp_path / "run"
    process = train(out, *TINY, "--steps", "20", "--save-every", "1", "--lr", "1e38", expect=1)
    errors = error_lines(process.stderr)
    assert len(errors) == 1 and "Traceback" not in process.stderr, process.stderr
    assert "loss became inf at step 2" in errors[0] or "loss became nan at step 2" in errors[0], errors[0]
    assert "last good checkpoint (step 1) is kept" in errors[0] and "--on-nonfinite rollback" in errors[0]
    assert latest(out) == 1
    # The run folder's weights are that checkpoint's, not the ones that produced the bad loss.
    assert _checkpoint_weights_equal_run_weights(out, 1)
    assert not (out / "README.md").exists(), "a failed run must not get a model card"


def test_rollback_goes_back_to_the_checkpoint_with_half_the_lr(tmp_path: Path):
    out = tmp_path / "run"
    process = train(out, *TINY, "--steps", "20", "--save-every", "5", "--log-every", "1",
                    "--on-nonfinite", "rollback", fault="nonfinite-13")  # step 13's loss is NaN, once
    assert "non-finite loss (nan) at step 13: rolled back to step 10 with the lr scaled by 0.5" in process.stderr
    assert metric_steps(out) == list(range(1, 21)), "rolled-back steps must not stay in metrics.jsonl"
    from gencli.runspec import RunSpec
    from gencli.schedule import lr_at

    engine = RunSpec.from_json((out / "run.json").read_text()).engine
    rows = {row["step"]: row for row in metrics(out)}
    for step in range(1, 21):  # the logged lr is the lr of the update that reached that step
        scale = 0.5 if step > 10 else 1.0
        assert math.isclose(rows[step]["lr"], lr_at(step - 1, engine) * scale, rel_tol=1e-12), step
    state = json.loads((out / "training_state" / "step-00000020" / "state.json").read_text())
    assert state["lr_scale"] == 0.5, "the smaller lr must survive a resume"
    assert _finite(out) and (out / "README.md").exists()


def test_rollback_gives_up_after_three_tries(tmp_path: Path):
    out = tmp_path / "run"
    process = train(out, *TINY, "--steps", "20", "--save-every", "5", "--on-nonfinite", "rollback",
                    fault="nonfinite-from-8", expect=1)
    assert process.stderr.count("rolled back to step 5") == 3
    errors = error_lines(process.stderr)
    assert len(errors) == 1 and "at step 8" in errors[0] and "after 3 rollback(s)" in errors[0], process.stderr
    assert "last good checkpoint (step 5) is kept" in errors[0]
    assert latest(out) == 5 and _checkpoint_weights_equal_run_weights(out, 5)


def test_the_fault_hooks_cannot_be_reached_from_the_environment(tmp_path: Path) -> None:
    """A stray GENCLI_FAULT (the old test switch) in a user's environment changes nothing about a real run."""
    process = train(tmp_path / "run", "--preset", "tiny", "--steps", "4", "-q", GENCLI_FAULT="nonfinite-2")
    assert process.returncode == 0 and (tmp_path / "run" / "README.md").is_file(), process.stderr


def test_the_schedule_against_values_worked_out_by_hand() -> None:
    """lr 1e-3, warm-up 10, cosine to 1e-4 at step 110 (nanoGPT's shape); values computed on paper."""
    from gencli.runspec import EngineOptions
    from gencli.schedule import lr_at

    engine = EngineOptions(lr=1e-3, warmup_steps=10, decay_steps=110, steps=50)
    expected = {0: 1e-4, 4: 5e-4, 9: 1e-3, 10: 1e-3,
                60: 1e-4 + 0.9e-3 * 0.5,  # half-way: cos(pi/2) = 0
                35: 1e-4 + 0.9e-3 * 0.5 * (1 + math.sqrt(0.5)),  # a quarter: cos(pi/4)
                110: 1e-4, 500: 1e-4}  # the end of the decay, and flat after it (steps=50 is not read)
    for step, lr in expected.items():
        assert math.isclose(lr_at(step, engine), lr, rel_tol=1e-12), step
    assert lr_at(7, EngineOptions(lr=1e-3, decay_steps=0)) == 1e-3  # 0: constant
