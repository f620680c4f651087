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
    changes_seed = tmp_path / "seed.toml"
    changes_seed.write_text("seed = 3\n")
    cases = {("--seed", "3"): "--seed 0 (now 3)", ("--batch-size", "4"): "--batch-size 8 (now 4)",
             ("--hidden-size", "8"): "--hidden-size 32 (now 8)", ("--lr", "0.5"): "--lr 0.002 (now 0.5)",
             ("--grad-clip", "0"): "--grad-clip 1.0 (now 0.0)", ("--precision", "bf16"): "--precision auto (now bf16)",
             ("--config", str(changes_seed)): "--seed 0 (now 3)"}
    for flags, named in cases.items():
        process = run_gencli("train", "charrnn", "--out", str(out), "--resume", *flags)
        assert process.returncode == 2 and "cannot change" in process.stderr and named in process.stderr, \
            (flags, process.stderr)


def test_resume_accepts_the_runs_own_settings_typed_again(tmp_path: Path):
    """A recalled command with --resume added: the same values are no change, so the run continues."""
    out = tmp_path / "run"
    train(out, "--preset", "tiny", "--steps", "2", "--seed", "5", "--batch-size", "8", "-q")
    same = tmp_path / "same.toml"
    same.write_text("seed = 5\nbatch-size = 8\n")
    train(out, "--preset", "tiny", "--steps", "4", "--seed", "5", "--batch-size", "8", "--lr", "0.002",
          "--config", str(same), "--resume", "-q")
    assert json.loads((out / "training_state" / "latest.json").read_text())["step"] == 4


def test_a_run_records_the_argv_gencli_parsed_not_the_host_programs(capsys, tmp_path: Path) -> None:
    """Called from Python as cli.main([...]) (here inside pytest, whose own argv is sys.argv)."""
    from test_cli import gencli_inprocess

    out = tmp_path / "run"
    code, _, err = gencli_inprocess(capsys, "train", "charrnn", "--preset", "tiny", "--steps", "1", "--out", str(out),
                                    "-q")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["command"] == (
        f"gencli train charrnn --preset tiny --steps 1 --out {out} -q")
