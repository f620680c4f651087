"""The shared image data: the embedded MNIST split, binarization, folders of images and training batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.data import images
from gencli.errors import UsageError


@pytest.fixture(scope="module")
def splits() -> dict[str, images.ImageSet]:
    return {name: images.mnist(name) for name in ("train", "valid", "test")}


def test_the_embedded_split_is_fixed_stratified_and_disjoint(splits):
    sizes = {name: s.pixels.shape for name, s in splits.items()}
    assert sizes == {"train": (4000, 1, 28, 28), "valid": (500, 1, 28, 28), "test": (500, 1, 28, 28)}
    for name, s in splits.items():
        assert s.pixels.dtype == torch.uint8 and s.pixels.max() > 200
        assert torch.bincount(s.labels).tolist() == [images.PER_CLASS[name]] * 10
    flat = {name: {bytes(p.numpy()) for p in s.pixels} for name, s in splits.items()}
    assert not flat["train"] & flat["test"] and not flat["valid"] & flat["test"]


def test_held_out_binarization_is_fixed_and_matches_intensity(splits):
    a = images.fixed_binarization(splits["test"], "test")
    b = images.fixed_binarization(images.mnist("test"), "test")
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, images.fixed_binarization(splits["valid"], "valid")[: len(a)])
    # P(1) = intensity / 255: the mean of the 0/1 image tracks the mean intensity closely over 500 images
    assert abs(a.mean().item() - splits["test"].pixels.float().mean().item() / 255) < 0.005


def test_batches_depend_only_on_the_generator(splits):
    data = images.ImageBatches(splits["train"], binary=True)
    one = data.batch(torch.Generator().manual_seed(5), 16)
    two = data.batch(torch.Generator().manual_seed(5), 16)
    other = data.batch(torch.Generator().manual_seed(6), 16)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not torch.equal(one["binary"], other["binary"])
    assert one["binary"].shape == (16, 1, 28, 28) and one["pixels"].dtype == torch.uint8


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_a_folder_gives_labels_from_subfolders_and_skips_bad_files(tmp_path, capsys):
    grey = np.full((10, 12), 200, np.uint8)
    _write(tmp_path / "cats" / "a.png", grey)
    _write(tmp_path / "dogs" / "b.jpg", grey)
    _write(tmp_path / "dogs" / "c.png", grey)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png")
    loaded = images.load_folder(str(tmp_path), size=8)
    assert loaded.pixels.shape == (3, 1, 8, 8) and loaded.classes == ["cats", "dogs"]
    assert loaded.labels.tolist() == [0, 1, 1]
    assert "skipped 1 unreadable or oversized image file(s)" in capsys.readouterr().err
    colour = np.zeros((6, 6, 3), np.uint8)
    colour[..., 0] = 255
    _write(tmp_path / "cats" / "red.png", colour)
    rgb = images.load_folder(str(tmp_path), size=4)
    assert rgb.pixels.shape == (4, 3, 4, 4) and rgb.labels.tolist() == [0, 0, 1, 1]  # cats/red.png second
    assert rgb.pixels[1, 0].min() == 255 and rgb.pixels[1, 1].max() == 0


def test_bad_sources_are_one_line_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no PNG or JPEG"):
        images.load_folder(str(tmp_path), size=8)
    with pytest.raises(UsageError, match="no such"):
        images.load_image(tmp_path / "missing.png", 28, 1)
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(UsageError, match="not a readable image"):
        images.load_image(tmp_path / "x.png", 28, 1)


def test_holdout_split_is_fixed_and_disjoint(splits):
    train, held = images.holdout_split(splits["valid"], fraction=0.1)
    assert held.pixels.shape[0] == 50 and train.pixels.shape[0] == 450
    again, _ = images.holdout_split(splits["valid"], fraction=0.1)
    assert torch.equal(train.pixels, again.pixels)
