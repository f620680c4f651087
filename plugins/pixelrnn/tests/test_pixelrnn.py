"""pixelrnn: the shared contract, causality of every architecture, the cached sampler against full passes,
completion, exact evaluation and the command line."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.errors import UsageError
from gencli.plugin import EvalRequest, SampleRequest
from gencli.testing import PluginContract
from gencli_pixelrnn import Config, EvalOptions, SampleOptions, plugin
from gencli_pixelrnn.layers import skew, unskew
from gencli_pixelrnn.model import PixelRNN
from gencli_pixelrnn.sampling import generate, teacher_forced_logits

ARCHS = ["pixelcnn", "gated-pixelcnn", "row-lstm", "diagonal-bilstm"]
TINY = {"layers": 2, "hidden": 8, "first_kernel": 3}


class TestPixelRNNContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_eval_options = {"max_images": 50}


class TestRowLSTMContract(PluginContract):
    plugin = plugin
    tiny_config = {**TINY, "arch": "row-lstm", "layers": 1}
    tiny_eval_options = {"max_images": 20}


def random_model(arch: str, colours: int = 1, levels: int = 2, size: int = 5, **overrides) -> PixelRNN:
    torch.manual_seed(0)
    config = Config(**{**TINY, "hidden": 12, "arch": arch, "image_size": size, "levels": levels,
                       "channels": colours, **overrides})
    return PixelRNN(config).eval()


def random_values(model: PixelRNN, batch: int = 2, size: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, model.levels, (batch, model.colours, size, size), generator=generator).float()


# ---- causality -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("colours,levels", [(1, 2), (3, 256)])
@pytest.mark.parametrize("arch", ARCHS)
def test_output_at_a_pixel_has_no_gradient_from_that_pixel_or_later(arch: str, colours: int, levels: int) -> None:
    """Raster order, then R, G, B within a pixel: logits of (i, j, c) must not depend on any (i', j', c') at or
    after it, and must depend on the value just before it (the earlier colour, else the pixel to the left,
    else the pixel above)."""
    size = 5
    model = random_model(arch, colours, levels, size)
    x = model.encode(random_values(model, 16, size)).requires_grad_(True)  # 16 images: no path dead in all
    logits = model(x)  # (16, C, K, H, W)
    order = torch.arange(size * size * colours).view(size, size, colours).permute(2, 0, 1)  # (C, H, W)
    for i in range(size):
        for j in range(size):
            for c in range(colours):
                (grad,) = torch.autograd.grad(logits[:, c, :, i, j].sum(), x, retain_graph=True)
                grad = grad.abs().sum(0)  # (C, H, W); images are independent, so summing keeps zeros zero
                position = order[c, i, j]
                assert not grad[order >= position].any(), f"{arch}: ({i},{j},{c}) sees its future"
                before = (c - 1, i, j) if c else (colours - 1, i, j - 1) if j else (colours - 1, i - 1, j)
                if position > 0:
                    assert grad[before] > 0, f"{arch}: ({i},{j},{c}) misses {before}"


def test_diagonal_bilstm_sees_above_right_and_row_lstm_a_triangle() -> None:
    """The paper's point about contexts: pixel (3, 0) of a diagonal BiLSTM depends on (1, 6), far to the
    upper right, which the Row LSTM's triangular context (one column wider per row up) cannot reach."""
    size = 7
    for arch, sees in (("diagonal-bilstm", True), ("row-lstm", False)):
        model = random_model(arch, size=size, layers=1)
        x = model.encode(random_values(model, 1, size)).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x)[0, 0, 0, 3, 0], x)
        assert bool(grad[0, 0, 1, 6] != 0) == sees, arch


def test_gated_pixelcnn_has_no_blind_spot() -> None:
    """Pixel (3, 0) depends on (2, 3), one row up and three columns right: the masked 3 x 3 stack cannot reach
    it at any depth (a path moves up one row per layer and never right within a row); the gated stacks do."""
    size = 5
    for arch, sees in (("gated-pixelcnn", True), ("pixelcnn", False)):
        model = random_model(arch, size=size, layers=3)
        x = model.encode(random_values(model, 1, size)).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x)[0, 0, 0, 3, 0], x)
        assert bool(grad[0, 0, 2, 3] != 0) == sees, arch


def test_skew_then_unskew_is_the_identity_and_columns_are_diagonals() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    skewed = skew(x)
    assert skewed.shape == (2, 3, 4, 8)
    assert torch.equal(skewed[:, :, 2, 2 + 1], x[:, :, 2, 1])  # row i moved right by i
    assert torch.equal(unskew(skewed, 5), x)


# ---- sampling ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("colours,levels", [(1, 2), (3, 256)])
@pytest.mark.parametrize("arch", ARCHS)
def test_cached_stepper_gives_the_logits_of_a_full_pass(arch: str, colours: int, levels: int) -> None:
    model = random_model(arch, colours, levels)
    values = random_values(model)
    with torch.inference_mode():
        full = model(model.encode(values))
        cached = teacher_forced_logits(model, values, "cached")
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch,colours,levels", [(arch, 1, 2) for arch in ARCHS] + [("gated-pixelcnn", 3, 256)])
def test_cached_and_naive_samplers_draw_the_same_images(arch: str, colours: int, levels: int) -> None:
    """The fast sampler (Ramachandran et al. 2017) against the reference: the same uniforms give the same pixels.
    (Every architecture's RGB logits are checked against a full pass above.)"""
    size = 5 if colours == 1 else 4
    model = random_model(arch, colours, levels, size=size)
    images = []
    for stepper in ("cached", "naive"):
        with torch.inference_mode():
            images.append(generate(model, torch.zeros(3, colours, size, size), stepper=stepper,
                                   generator=torch.Generator().manual_seed(4)))
    assert torch.equal(images[0], images[1])
    assert len(images[0].unique()) > 1  # a real draw, not one flat value


def test_sampling_progress_counts_pixels_of_every_image() -> None:
    model = random_model("gated-pixelcnn", size=4)
    for every, expected in ((0.0, list(range(0, 49, 3))), (3600.0, [0, 48])):  # every pixel; or start and end
        calls = []
        with torch.inference_mode():
            generate(model, torch.zeros(3, 1, 4, 4), generator=torch.Generator().manual_seed(0),
                     progress=lambda done, total: calls.append((done, total)), progress_every=every)
        assert [done for done, _ in calls] == expected  # 3 images x 16 pixels, not rows
        assert {total for _, total in calls} == {48}


def sample_with(model: PixelRNN, seed: int, n: int = 2, **options) -> np.ndarray:
    request = SampleRequest(n, seed, torch.device("cpu"))
    return plugin.sample(model, model.config, SampleOptions(**options), request).pixels


@pytest.fixture
def binary_model() -> PixelRNN:
    return random_model("pixelcnn", size=8)


def test_seeded_sampling_is_reproducible(binary_model: PixelRNN) -> None:
    first = sample_with(binary_model, seed=3)
    assert first.shape == (2, 8, 8, 1) and set(np.unique(first)) <= {0, 255}
    assert np.array_equal(first, sample_with(binary_model, seed=3))
    assert not np.array_equal(first, sample_with(binary_model, seed=4))


def write_png(path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def test_completion_keeps_the_given_rows(binary_model: PixelRNN, tmp_path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for k in range(2):
        paths.append(tmp_path / f"digit{k}.png")
        write_png(paths[-1], (rng.random((8, 8)) > 0.5).astype(np.uint8) * 255)
    grid = sample_with(binary_model, seed=0, complete=paths, keep_rows=3, completions=3)
    assert grid.shape == (2 * (1 + 3), 8, 8, 1)  # per image: the original, then 3 completions
    for k, path in enumerate(paths):
        given = np.asarray(Image.open(path))[:, :, None]
        original, completions = grid[4 * k], grid[4 * k + 1: 4 * k + 4]
        assert np.array_equal(original, given)
        assert all(np.array_equal(done[:3], given[:3]) for done in completions)
    completions = grid[1:4]
    assert any(not np.array_equal(a[3:], b[3:]) for a, b in zip(completions, completions[1:]))


def test_completion_refuses_keep_rows_beyond_the_image(binary_model: PixelRNN, tmp_path) -> None:
    write_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(UsageError, match="--keep-rows 9"):
        sample_with(binary_model, seed=0, complete=[tmp_path / "a.png"], keep_rows=9)


# ---- evaluation ----------------------------------------------------------------------------------------------------


def test_a_model_that_predicts_one_half_everywhere_scores_784_ln2_nats() -> None:
    config = Config(**TINY, levels=2, channels=1)
    model = PixelRNN(config).eval()
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
        metrics = plugin.evaluate(model, config, EvalOptions(max_images=20), EvalRequest(None, torch.device("cpu"), 0))
    assert metrics["nll_nats_per_image"] == pytest.approx(784 * math.log(2), rel=1e-6)
    assert metrics["bits_per_dim"] == pytest.approx(1.0, rel=1e-6)


def test_a_folder_of_rgb_images_trains_a_256_way_rgb_model(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for k in range(6):
        write_png(tmp_path / f"{k}.png", rng.integers(0, 256, (10, 10, 3), dtype=np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    prepared = plugin.prepare(str(tmp_path), Config(**TINY, image_size=6), plugin.TrainOptions())
    assert (prepared.config.channels, prepared.config.levels) == (3, 256)
    batch = prepared.data.batch(torch.Generator().manual_seed(0), 2)
    model = plugin.build(prepared.config)
    loss, metrics = plugin.loss(model, batch, plugin.TrainOptions())
    assert loss.item() == pytest.approx(metrics["nats_per_image"] / (3 * 6 * 6), rel=1e-5)
    assert metrics["bits_per_dim"] > 6  # an untrained 256-way softmax is near 8 bits per dimension


# ---- the command line ------------------------------------------------------------------------------------------------


def run_gencli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "HF_"))}
    env.update({"NO_COLOR": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    return subprocess.run([sys.executable, "-m", "gencli", *args], env=env, capture_output=True, timeout=120)


def test_train_then_evaluate_and_complete_from_the_command_line(tmp_path) -> None:
    run = tmp_path / "run"
    trained = run_gencli("train", "pixelrnn", "--preset", "tiny", "--steps", "2", "--out", str(run), "-q")
    assert trained.returncode == 0, trained.stderr.decode()
    evaluated = run_gencli("evaluate", "pixelrnn", "--weights", str(run), "--json", "--max-images", "10")
    assert evaluated.returncode == 0, evaluated.stderr.decode()
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert metrics["test_images"] == 10 and metrics["nll_nats_per_image"] > 0
    write_png(tmp_path / "digit.png", np.full((28, 28), 255, np.uint8))
    completed = run_gencli("sample", "pixelrnn", "--weights", str(run), "--complete", str(tmp_path / "digit.png"),
                           "--completions", "2", "--keep-rows", "27", "-o", "-", "-q")
    assert completed.returncode == 0, completed.stderr.decode()
    grid = np.asarray(Image.open(io.BytesIO(completed.stdout)))
    assert grid.shape[1] > grid.shape[0]  # one row: the original and two completions side by side
