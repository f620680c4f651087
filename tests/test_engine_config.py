"""--config run.toml: defaults < preset < file < typed flags, the resolved settings saved in run.json and
actually used by the engine."""

from __future__ import annotations

import json
from pathlib import Path

from test_engine_common import error_lines, metrics, train

from conftest import run_gencli

TOML = """
preset = "tiny"
steps = 9               # overridden by --steps on the command line
lr = 0.005              # overridden by --lr
log-every = 2
save_every = 3
hidden-size = 24        # overrides the tiny preset's 32
seq_length = 32         # a TrainOptions field
warmup_steps = 0        # engine settings without a flag of their own are allowed in the file
decay_steps = 0         # 0: a constant learning rate
"""


def test_config_file_sits_between_preset_and_flags(tmp_path: Path):
    config = tmp_path / "run.toml"
    config.write_text(TOML)
    out = tmp_path / "run"
    train(out, "--config", str(config), "--steps", "4", "--lr", "0.01", "-q")
    run = json.loads((out / "run.json").read_text())
    assert run["preset"] == "tiny"
    assert run["engine"]["steps"] == 4 and run["engine"]["lr"] == 0.01  # flags win over the file
    assert run["engine"]["log_every"] == 2 and run["engine"]["save_every"] == 3  # the file wins over defaults
    assert run["engine"]["batch_size"] == 8  # the preset's, untouched by the file
    assert run["engine"]["warmup_steps"] == 0 and run["engine"]["decay_steps"] == 0
    assert run["config"]["hidden_size"] == 24 and run["config"]["embedding_size"] == 16  # file > preset
    assert run["options"]["seq_length"] == 32
    assert "--config" in run["command"]
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 24
    # The engine trained with those values, not only recorded them: a constant lr 0.01, logged every 2 steps.
    assert [(row["step"], row["lr"]) for row in metrics(out)] == [(2, 0.01), (4, 0.01)]
    assert sorted(p.name for p in (out / "training_state").glob("step-*")) == ["step-00000003", "step-00000004"]


def test_config_file_errors_are_one_line(tmp_path: Path):
    cases = {
        "unknown = 1\n": "unknown option 'unknown'",
        "steps = 'ten'\n": "'steps' must be int",
        "on_nonfinite = 'retry'\n": "must be one of stop, rollback",
        "steps = [\n": "not valid TOML",
        "resume = true\n": "can only be given on the command line",
    }
    for text, message in cases.items():
        config = tmp_path / "bad.toml"
        config.write_text(text)
        process = run_gencli("train", "charrnn", "--config", str(config), "--out", str(tmp_path / "never"))
        assert process.returncode == 2, (text, process.stderr)
        assert error_lines(process.stderr) == [process.stderr.strip()] and message in process.stderr, process.stderr
        assert not (tmp_path / "never").exists()


def test_resume_keeps_settings_that_define_the_run(tmp_path: Path):
    out = tmp_path / "run"
    train(out, "--preset", "tiny", "--steps", "2", "-q")
    for flags in (["--seed", "3"], ["--batch-size", "4"], ["--hidden-size", "8"], ["--config", "x.toml"]):
        process = run_gencli("train", "charrnn", "--out", str(out), "--resume", *flags)
        assert process.returncode == 2 and "cannot change" in process.stderr, process.stderr
