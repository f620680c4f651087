"""Bounds declared where options are declared: the parser refuses what would overflow, never finish or be NaN,
--help shows them, --config files are held to them, and every first-party size or count declares a maximum."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest
from test_cli import assert_one_error_line, gencli_inprocess

from gencli import registry
from gencli.options import TRAIN_FLAGS, Flag, bounds_text, dataclass_flags, plugin_flags, problem_with
from gencli.plugin import option

# What the fuzz campaign of issue 20 found, each now one `gencli: error:` line naming the flag.
FUZZ_FINDINGS = [
    (["sample", "dcgan", "-n", "99999999999999999999999"], ["'-n'", "must be at most 10,000"]),
    (["sample", "dcgan", "--seed", "18446744073709551616"], ["'--seed'", "must be at most"]),
    (["sample", "dcgan", "--seed", "-1"], ["'--seed'", "must be at least 0"]),
    (["evaluate", "gan", "--samples", str(2**64)], ["'--samples'", "must be at most"]),
    (["train", "charrnn", "--hidden-size", str(2**64)], ["'--hidden-size'", "must be at most"]),
    (["evaluate", "wavenet", "--max-seconds", "-nan"], ["'--max-seconds'", "finite"]),
    (["evaluate", "wavenet", "--max-seconds", "inf"], ["'--max-seconds'", "finite"]),
    (["sample", "charrnn", "--temperature", "nan"], ["'--temperature'", "finite"]),
    (["train", "charrnn", "--lr", "-inf"], ["'--lr'", "finite"]),
    (["train", "charrnn", "--nnodes", "0"], ["'--nnodes'", "at least 1"]),
    (["train", "charrnn", "--nnodes", "3:2"], ["'--nnodes'", "MIN no more than MAX"]),
    (["train", "charrnn", "--nnodes", "two"], ["'--nnodes'", "node count"]),
    (["train", "wavenet", "--layers-per-stack", "2147483648"], ["'--layers-per-stack'", "must be at most 16"]),
    (["train", "dbm", "--mean-field-steps", "1e99"], ["'--mean-field-steps'", "not an integer"]),
    (["train", "dbm", "--mean-field-steps", "99999999"], ["'--mean-field-steps'", "must be at most 1000"]),
    (["sample", "charrnn", "--length", "9" * 5000], ["'--length'", "not an integer"]),
    (["sample", "wavenet", "--seconds", "0"], ["'--seconds'", "must be greater than 0"]),
]


@pytest.mark.parametrize("args,fragments", FUZZ_FINDINGS, ids=[" ".join(a)[:60] for a, _ in FUZZ_FINDINGS])
def test_out_of_bounds_values_are_one_line_usage_errors(capsys, args, fragments) -> None:
    code, out, err = gencli_inprocess(capsys, *args)
    assert code == 2 and out == ""
    assert_one_error_line(err, *fragments)


def test_values_inside_the_bounds_parse_as_numbers() -> None:
    flag = Flag("x", float, "", above=0, maximum=600)
    assert problem_with(flag, 600.0) is None and problem_with(flag, 1e-9) is None
    assert problem_with(flag, 0.0) == "must be greater than 0"
    assert problem_with(flag, float("nan")) == "must be a finite number"
    assert problem_with(Flag("y", int, ""), 2**63) == f"must be at most {2**63 - 1:,}"  # no bound declared: 64 bits
    assert problem_with(Flag("y", int, ""), True) == "must be an integer"
    assert problem_with(Flag("z", float, "", finite=False), float("inf")) is None


def test_help_shows_the_bounds_beside_the_default(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per option
    code, out, _ = gencli_inprocess(capsys, "train", "wavenet", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "[default: 10; 1<=x<=16]" in text  # --layers-per-stack
    assert "0<x<=1e+38]" in text  # --lr: above 0, within float32
    code, out, _ = gencli_inprocess(capsys, "sample", "wavenet", "--help")
    assert "[default: 1.0; 0<x<=600]" in " ".join(out.split())  # --seconds


def test_switches_show_no_value_type_in_help(capsys, monkeypatch) -> None:
    """On/off options take no value: Typer's "<bool>" beside them read as if they did (--help, --json, -q)."""
    monkeypatch.setenv("COLUMNS", "300")
    for args in (["sample", "charrnn", "--help"], ["evaluate", "dbm", "--help"], ["--help"], ["list", "--help"]):
        code, out, _ = gencli_inprocess(capsys, *args)
        assert code == 0 and "--help" in out
        assert "<bool>" not in out, (args, out)
    _, out, _ = gencli_inprocess(capsys, "evaluate", "dbm", "--help")
    assert re.search(r"--quick\s+--no-quick\s+A first look", out), out  # no type column between


def test_config_files_are_held_to_the_same_bounds(capsys, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("layers_per_stack = 2147483648\n")
    code, _, err = gencli_inprocess(capsys, "train", "wavenet", "--config", str(config), "--out", str(tmp_path / "r"))
    assert code == 2
    assert_one_error_line(err, "layers_per_stack", "must be at most 16")
    config.write_text("lr = nan\n")
    code, _, err = gencli_inprocess(capsys, "train", "wavenet", "--config", str(config), "--out", str(tmp_path / "r"))
    assert code == 2
    assert_one_error_line(err, "'lr' must be a finite number")


def test_every_first_party_size_and_count_declares_a_maximum() -> None:
    """A new int or float option must say how large it may be, or a typo such as 2**31 starts endless work."""
    missing = []
    for name, entry in registry.discover().items():
        plugin = entry.load()
        for verb in ("sample", "train", "evaluate"):
            for flag in plugin_flags(verb, plugin):
                if flag.type in (int, float) and flag.maximum is None and flag.below is None:
                    if flag.group == "core" and flag.dest not in ("n", "seed", "threads", "steps", "batch_size"):
                        continue  # core flags are checked once below
                    missing.append(f"{name} {verb} {flag.long}")
    assert not missing, missing
    assert all(f.maximum is not None for f in TRAIN_FLAGS if f.type in (int, float)), \
        [f.long for f in TRAIN_FLAGS if f.type in (int, float) and f.maximum is None]


def test_bounds_are_declared_on_the_dataclass_field() -> None:
    @dataclasses.dataclass
    class Options:
        width: int = option(8, "Width.", minimum=1, maximum=64)
        rate: float = option(0.5, "Rate.", above=0, below=1)
        name: str = option("", "Name.")

    flags = {f.dest: f for f in dataclass_flags(Options, "SampleOptions")}
    assert bounds_text(flags["width"]) == "1<=x<=64" and bounds_text(flags["rate"]) == "0<x<1"
    assert bounds_text(flags["name"]) == ""

    @dataclasses.dataclass
    class Wrong:
        name: str = option("", "Name.", minimum=1)

    with pytest.raises(ValueError, match="bounds are for int and float"):
        dataclass_flags(Wrong, "SampleOptions")
    assert typing.get_type_hints(Options)["width"] is int
