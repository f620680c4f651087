"""Every bundled model card's recipe reruns as written: its commands, parsed by the real CLI and settled by the
engine's own resolution (without training), give the steps, batch size, seed, peak lr and schedule horizon the
card reports. A card whose original command no longer means the same (an older default, another --out for the
resume) carries a `Rerun with:` line, and that is what is checked."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gencli import cli, registry
from gencli.options import split_by_group
from gencli.runspec import resolve

REPO = Path(__file__).resolve().parents[1]
CARDS = sorted(p for p in (REPO / "plugins").glob("*/gencli_*/weights/**/README.md"))


def recipe(card: str) -> list[list[str]]:
    """The commands to rerun: the `Rerun with:` line's (joined by &&), else the Recipe block's."""
    rerun = re.search(r"^Rerun with: `([^`]+)`", card, flags=re.M)
    if rerun:
        lines = rerun[1].split("&&")
    else:
        lines = re.search(r"## Recipe\s+```\n(.*?)```", card, flags=re.S)[1].strip().splitlines()
    return [shlex.split(line) for line in lines]


def settle(argv: list[str]):
    assert argv[:2] == ["gencli", "train"], argv
    name, args = argv[2], argv[3:]
    command = cli.plugin_command("train", name, registry.get(name))
    values = {k: v for k, v in command.make_context(name, list(args)).params.items() if v is not None}
    plugin = registry.load(name)
    from gencli.commands import verb_flags

    flags = verb_flags("train", plugin)
    return resolve(plugin, split_by_group(flags, values), flags, " ".join(argv)), values


def reported(card: str) -> dict[str, float]:
    steps = re.search(r"^- steps: (\d+), batch size (\d+)(?:, peak lr ([\d.e-]+))?, seed (\d+)", card, flags=re.M)
    figures = {"steps": int(steps[1]), "batch_size": int(steps[2]), "seed": int(steps[4])}
    schedule = re.search(r"^- learning rate: lr ([\d.e-]+) \(.*?by step (\d+)\)", card, flags=re.M)
    if schedule:
        figures.update(lr=float(schedule[1]), decay_steps=int(schedule[2]))
    elif steps[3]:
        figures["lr"] = float(steps[3])
    return figures


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: str(p.relative_to(REPO / "plugins")))
def test_a_bundled_recipe_reruns_as_written(card_path: Path) -> None:
    card = card_path.read_text(encoding="utf-8")
    commands = recipe(card)
    spec, first = settle(commands[0])
    for later in commands[1:]:  # each resume continues the same folder, perhaps to a new end
        _, values = settle(later)
        assert values.get("resume") and values.get("out") == first.get("out"), (later, "resumes another --out")
        spec.engine.steps = values.get("steps", spec.engine.steps)
    engine = spec.engine
    settled = {"steps": engine.steps, "batch_size": engine.batch_size, "seed": engine.seed, "lr": engine.lr,
               "decay_steps": engine.decay_steps}
    want = reported(card)
    assert {k: settled[k] for k in want} == want
