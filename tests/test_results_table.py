"""benchmarks/results_table.py: the README's results table is the one the bundled model cards give."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from conftest import REPO


def load_script():
    spec = importlib.util.spec_from_file_location("results_table", REPO / "benchmarks" / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_one_the_cards_give() -> None:
    table = load_script()
    assert table.main(["--check"]) == 0, "run python benchmarks/results_table.py"
    assert table.render() in (REPO / "README.md").read_text(encoding="utf-8")


def test_a_retrained_card_changes_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = load_script()
    for row in table.ROWS:
        (tmp_path / row.card).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / row.card, tmp_path / row.card)
    rbm = next(row for row in table.ROWS if row.metric == "test_log_likelihood_nats")
    card = (tmp_path / rbm.card).read_text(encoding="utf-8")
    old = table.read_card(tmp_path / rbm.card).metrics[rbm.metric]
    # a retrained card: another figure, and the engine's line naming the split it scored
    card = card.replace(f"| {rbm.metric} | {old:.4f} |", f"| {rbm.metric} | -88.1234 |")
    card = card.replace("\n| metric | value |", "\n- scored on: mnist test split (10,000 images: the published test "
                        "set), binarized once with a fixed seed\n\n| metric | value |", 1)
    (tmp_path / rbm.card).write_text(card, encoding="utf-8")
    monkeypatch.setattr(table, "REPO", tmp_path)
    rows = {line.split(" | ")[0]: line for line in table.render().splitlines()}
    assert " | -88.12 | mnist (10,000 test images) | " in rows[f"| {rbm.model}"]
    assert table.render() != load_script().render()
