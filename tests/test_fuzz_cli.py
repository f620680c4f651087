"""Generated command lines, in-process: each ends as one `gencli: error:` line, or reaches the command with every
number inside its declared bounds; never an internal error or a traceback. The model work itself is replaced by
a recorder, so hundreds of lines take seconds; `python tests/fuzz_cli.py` runs the real commands."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencli import commands
from gencli.cli import main
from gencli.options import problem_with
from fuzz_cli import declarations, generate

PLUGINS = declarations()


@pytest.fixture
def reached(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The values each command body would have run with, instead of running it."""
    seen: list[dict[str, Any]] = []

    def recorder(name: str, flags: list[Any]) -> Any:
        def body(values: dict[str, Any]) -> None:
            by_dest = {flag.dest: flag for flag in flags}
            problems = {dest: problem_with(by_dest[dest], value) for dest, value in values.items()}
            seen.append({"values": values, "problems": {k: v for k, v in problems.items() if v}})

        return body

    for verb in ("sample", "evaluate", "train"):
        monkeypatch.setitem(commands.VERB_BODIES, verb, recorder)
    return seen


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_generated_command_lines_end_cleanly(rng: random.Random, reached, capsys, tmp_path: Path) -> None:
    argv = generate(rng, PLUGINS, tmp_path)
    if argv[0] in ("push", "download"):
        argv = ["info", argv[0]]  # the Hub is not this test's subject: `info push` is an unknown plugin
    before = len(reached)
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    if code == 0:
        if argv[0] in ("sample", "evaluate", "train"):
            assert len(reached) == before + 1, (argv, err)
            assert not reached[-1]["problems"], (argv, reached[-1]["problems"])
    else:
        assert len(reached) == before, (argv, "a refused command must not reach the model work")
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("gencli: error: "), (argv, err)
