"""Paired data: both folder layouts pair the right files, --direction swaps the sides, bad layouts are one
clear error line, and the embedded edges2digits pairs are edges of their own digits."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.errors import UsageError
from gencli_pix2pix import Config, TrainOptions, plugin
from gencli_pix2pix.embedded import edges2digits
from gencli_pix2pix.folders import folder_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

SIZE = 8


def grey(value: int, size: int = SIZE) -> Image.Image:
    return Image.fromarray(np.full((size, size), value, dtype=np.uint8))


def red(value: int, size: int = SIZE) -> Image.Image:
    array = np.zeros((size, size, 3), dtype=np.uint8)
    array[..., 0] = value
    return Image.fromarray(array)


def ab_folders(root: Path, count: int = 5, split: str = "") -> Path:
    """A/i.png grey with value 5 i, B/i.png red with value 5 i + 100: a pair's values tell which files met."""
    for side in ("A", "B"):
        (root / side / split).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        grey(5 * i).save(root / "A" / split / f"{i:03d}.png")
        red(5 * i + 100).save(root / "B" / split / f"{i:03d}.png")
    return root


def side_by_side(root: Path, count: int = 5, split: str = "") -> Path:
    (root / split).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = np.zeros((SIZE, 2 * SIZE, 3), dtype=np.uint8)
        image[:, :SIZE] = 5 * i  # A: grey
        image[:, SIZE:, 0] = 5 * i + 100  # B: red
        Image.fromarray(image).save(root / split / f"{i:03d}.png")
    return root


def assert_paired(pairs) -> None:
    """Every A (grey value v) sits beside the B made with it (red value v + 100)."""
    assert pairs.a.shape[1:] == (1, SIZE, SIZE) and pairs.b.shape[1:] == (3, SIZE, SIZE)
    a_values = pairs.a[:, 0, 0, 0].long()
    assert torch.equal(pairs.b[:, 0, 0, 0].long(), a_values + 100)
    assert int(pairs.b[:, 1:].max()) == 0


@pytest.mark.parametrize("layout", [ab_folders, side_by_side])
def test_both_layouts_load_and_pair_correctly(tmp_path, layout) -> None:
    root = str(layout(tmp_path, count=20))
    train, held = folder_pairs(root, "train", SIZE), folder_pairs(root, "test", SIZE)
    assert (len(train), len(held)) == (18, 2)  # a fixed 10% held out
    assert_paired(train)
    assert_paired(held)
    values = set(train.a[:, 0, 0, 0].tolist()) | set(held.a[:, 0, 0, 0].tolist())
    assert values == {5 * i for i in range(20)}  # every pair once, none in both parts


@pytest.mark.parametrize("layout", [ab_folders, side_by_side])
def test_the_official_train_and_test_folders_are_used(tmp_path, layout) -> None:
    layout(tmp_path, count=3, split="train")
    layout(tmp_path, count=2, split="test")
    assert (len(folder_pairs(str(tmp_path), "train", SIZE)), len(folder_pairs(str(tmp_path), "test", SIZE))) == (3, 2)


def test_direction_swaps_input_and_target(tmp_path) -> None:
    root = str(ab_folders(tmp_path, count=6))
    forward = plugin.prepare(root, Config(image_size=SIZE), TrainOptions(mirror=False))
    backward = plugin.prepare(root, Config(image_size=SIZE, direction="BtoA"), TrainOptions(mirror=False))
    assert (forward.config.in_channels, forward.config.out_channels) == (1, 3)
    assert (backward.config.in_channels, backward.config.out_channels) == (3, 1)
    a = forward.data.batch(torch.Generator().manual_seed(4), 5)
    b = backward.data.batch(torch.Generator().manual_seed(4), 5)
    assert torch.equal(a["a"], b["b"]) and torch.equal(a["b"], b["a"])


def test_mirroring_flips_both_sides_of_a_pair_together(tmp_path) -> None:
    root = tmp_path / "d"
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
    ramp = np.tile(np.arange(SIZE, dtype=np.uint8) * 20, (SIZE, 1))  # brighter to the right
    for i in range(4):
        Image.fromarray(ramp).save(root / "A" / f"{i}.png")
        Image.fromarray(ramp).save(root / "B" / f"{i}.png")
    prepared = plugin.prepare(str(root), Config(image_size=SIZE), TrainOptions(mirror=True))
    batch = prepared.data.batch(torch.Generator().manual_seed(0), 64)
    assert torch.equal(batch["a"], batch["b"])  # flipped together
    flipped = batch["a"][:, 0, 0, 0] > batch["a"][:, 0, 0, -1]
    assert 0 < int(flipped.sum()) < 64  # about half


def test_a_missing_partner_is_named(tmp_path) -> None:
    root = ab_folders(tmp_path, count=4)
    (root / "B" / "002.png").unlink()
    with pytest.raises(UsageError, match=r"A/002\.png has no partner B/002\.png"):
        folder_pairs(str(root), "train", SIZE)
    grey(1).save(root / "B" / "002.png")
    grey(1).save(root / "B" / "extra.png")
    with pytest.raises(UsageError, match=r"B/extra\.png has no partner A/extra\.png"):
        folder_pairs(str(root), "train", SIZE)


def test_an_odd_width_side_by_side_image_is_named(tmp_path) -> None:
    side_by_side(tmp_path, count=3)
    Image.fromarray(np.zeros((SIZE, 2 * SIZE + 1), dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(UsageError, match=r"odd\.png is 17 pixels wide; a side-by-side A\|B image needs an even width"):
        folder_pairs(str(tmp_path), "train", SIZE)


def test_bad_layouts_are_one_clear_error(tmp_path) -> None:
    (tmp_path / "only_a" / "A").mkdir(parents=True)
    grey(0).save(tmp_path / "only_a" / "A" / "0.png")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "empty").mkdir()
    cases = {"only_a": "has A/ but no B/ folder", "corrupt": "0.png is not a readable image",
             "empty": "no PNG or JPEG images there"}
    for folder, message in cases.items():
        with pytest.raises(UsageError, match=message):
            folder_pairs(str(tmp_path / folder), "train", SIZE)


def test_a_bad_layout_is_one_error_line_through_the_cli(tmp_path) -> None:
    root = ab_folders(tmp_path / "data", count=3)
    grey(0).save(root / "A" / "x.png")
    process = run_gencli("train", "pix2pix", "--data", str(root), "--steps", "1", "--out", str(tmp_path / "run"), "-q")
    lines = process.stderr.strip().splitlines()
    assert process.returncode == 2 and len(lines) == 1, process.stderr
    assert lines[0].startswith("gencli: error:") and "A/x.png has no partner B/x.png" in lines[0]
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_edges2digits_pairs_are_the_edges_of_their_own_digits() -> None:
    pairs = edges2digits("test")
    assert pairs.a.shape == pairs.b.shape == (500, 1, 32, 32)
    assert set(pairs.a.unique().tolist()) == {0, 255}  # edge maps: white on black
    assert torch.equal(torch.bincount(pairs.labels), torch.full((10,), 50))
    # An edge lies where the digit changes: next to an edge pixel the digit has both ink and background.
    ink = pairs.b > 127
    near_ink = torch.nn.functional.max_pool2d(ink.float(), 3, 1, 1) > 0
    near_background = torch.nn.functional.max_pool2d((~ink).float(), 3, 1, 1) > 0
    edge = pairs.a > 0
    assert float((near_ink & near_background)[edge].float().mean()) > 0.95
    # and the edges of a digit are not those of another
    assert float((edge[0] != edge[1]).float().mean()) > 0.02
