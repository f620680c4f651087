"""lapgan: the pyramid, the per-level training step, sampling shapes and --levels, labels, RGB folders, errors."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.errors import UsageError
from gencli.plugin import EvalRequest, SampleRequest
from gencli_gan.lapgan import lapgan
from gencli_gan.lapgan.model import embedded_digits
from gencli_gan.lapgan.pyramid import gaussian_pyramid, laplacian_pyramid, reconstruct, upsample
from gencli_gan.training import embedded

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

CPU = torch.device("cpu")
TINY = {"z_dim": 8, "coarse_hidden": 16, "fine_channels": 4}


# ---- the pyramid ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [2, 3, 4])
def test_laplacian_pyramid_reconstructs_its_input_exactly(levels) -> None:
    noise = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    digits = embedded_digits("test", 32).pixels[:8].float() / 127.5 - 1
    for images in (noise, digits):
        pyramid = laplacian_pyramid(images, levels)
        assert [band.shape[-1] for band in pyramid] == [32 >> k for k in range(levels)]
        assert float((reconstruct(pyramid) - images).abs().max()) < 1e-5


def test_band_pass_images_hold_only_detail() -> None:
    """A smooth image has (almost) no band-pass content; the coarsest level is the Gaussian pyramid's top."""
    flat = torch.full((2, 1, 32, 32), 0.3)
    bands = laplacian_pyramid(flat, 3)
    assert all(float(band.abs().max()) < 1e-6 for band in bands[:-1])
    digits = embedded_digits("test", 32).pixels[:8].float() / 127.5 - 1
    assert torch.equal(laplacian_pyramid(digits, 3)[-1], gaussian_pyramid(digits, 3)[-1])
    assert float(laplacian_pyramid(digits, 3)[0].abs().max()) > 0.1  # digits have edges


def test_embedded_digits_are_padded_not_resized() -> None:
    padded, original = embedded_digits("train", 32).pixels, embedded("train", 28).pixels
    assert padded.shape == (4000, 1, 32, 32)
    assert torch.equal(padded[:, :, 2:30, 2:30], original)
    assert int(padded[:, :, :2].sum()) == 0 and int(padded[:, :, :, 30:].sum()) == 0


# ---- the training step ------------------------------------------------------------------------------------


def tiny_model(**config):
    torch.manual_seed(0)
    options = lapgan.TrainOptions()
    prepared = lapgan.prepare(None, lapgan.Config(**{**TINY, **config}), options)
    return lapgan.build(prepared.config), prepared, options


@pytest.mark.parametrize("r1,class_loss", [(0.0, 0.0), (0.5, 0.0), (0.0, 1.0), (0.5, 1.0)])
def test_each_level_is_its_own_game_on_the_real_pyramid(r1, class_loss) -> None:
    """One backward of the summed scalar gives each level's generator exactly the gradient of that level's
    g_loss (AC-GAN's class term included): the finer levels train on the REAL low-pass image, so nothing reaches
    a coarser generator. The discriminators' class heads learn only when the class losses are on."""
    model, prepared, _ = tiny_model()
    model.train()
    real, labels, z, *noises = prepared.data.batch(torch.Generator().manual_seed(1), 8)
    torch.manual_seed(2)
    outs = model(real, labels, z, tuple(noises), 0.9, r1, class_loss)
    expected = [torch.autograd.grad(out["g_loss"], list(generator.parameters()), retain_graph=True)
                for out, generator in zip(outs, model.generator)]
    sum(out["d_loss"] + out["g_loss"] for out in outs).backward()
    assert len(outs) == 3 and model.sides == [8, 16, 32]
    for level_grads, generator in zip(expected, model.generator):
        for want, parameter in zip(level_grads, generator.parameters()):
            torch.testing.assert_close(parameter.grad, want, rtol=1e-5, atol=1e-7)
    for discriminator in model.discriminator:
        for name, p in discriminator.named_parameters():
            learns = p.grad is not None and float(p.grad.abs().sum()) > 0
            assert learns == (class_loss > 0 or "classifier" not in name), name
    assert all(("d_class_acc" in out) == (class_loss > 0) for out in outs)


def test_the_class_losses_are_cross_entropies_of_the_class_heads() -> None:
    """d_loss gains the class head's cross-entropy on the real images, g_loss its cross-entropy on the fakes."""
    model, prepared, _ = tiny_model()
    model.train()
    batch = prepared.data.batch(torch.Generator().manual_seed(1), 8)
    real, labels, z, *noises = batch
    plain = model(real, labels, z, tuple(noises), 0.9, 0.0, 0.0)
    torch.manual_seed(3)
    with_classes = model(real, labels, z, tuple(noises), 0.9, 0.0, 2.0)
    coarse_real = real.float() / 127.5 - 1
    for _ in range(2):
        coarse_real = torch.nn.functional.avg_pool2d(coarse_real, 2)
    ce = torch.nn.functional.cross_entropy(model.discriminator[0](coarse_real, labels, classify=True), labels)
    torch.testing.assert_close(with_classes[0]["d_loss"] - plain[0]["d_loss"], 2 * ce, rtol=1e-4, atol=1e-5)
    assert all(float(b["g_loss"].detach()) > float(a["g_loss"].detach()) for a, b in zip(plain, with_classes))


def test_the_class_heads_never_see_the_label() -> None:
    """The discriminators take the class by projection, not as input, so their class heads cannot read it."""
    model, prepared, _ = tiny_model()
    model.eval()
    coarse, band, low = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)
    some, other = torch.tensor([0, 1, 2, 3]), torch.tensor([9, 8, 7, 6])
    with torch.no_grad():
        torch.nn.init.normal_(model.discriminator[2].heads.embed.weight)  # a projection strong enough to show
        assert torch.equal(model.discriminator[0](coarse, some, classify=True),
                           model.discriminator[0](coarse, other, classify=True))
        assert torch.equal(model.discriminator[2](band, low, some, classify=True),
                           model.discriminator[2](band, low, other, classify=True))
        assert not torch.allclose(model.discriminator[2](band, low, some), model.discriminator[2](band, low, other))


def test_a_new_refinement_level_is_the_plain_upsampled_image() -> None:
    """The last convolution starts at zero: before training, sampling adds no band-pass detail (no speckle)."""
    model, prepared, _ = tiny_model()
    model.eval()
    z, labels = torch.randn(3, 8), torch.tensor([1, 5, 9])
    levels = model.generate(z, (torch.randn(3, 1, 16, 16), torch.randn(3, 1, 32, 32)), labels)
    torch.testing.assert_close(levels[2], upsample(upsample(levels[0])), rtol=0, atol=1e-6)


def test_batches_carry_one_noise_plane_per_refinement_level() -> None:
    _, prepared, _ = tiny_model()
    pixels, labels, z, *noises = prepared.data.batch(torch.Generator().manual_seed(0), 5)
    assert pixels.shape == (5, 1, 32, 32) and pixels.dtype == torch.uint8 and labels.shape == (5,)
    assert z.shape == (5, 8) and [tuple(n.shape) for n in noises] == [(5, 1, 16, 16), (5, 1, 32, 32)]
    assert prepared.config.num_classes == 10 and prepared.config.classes[7] == "7"


# ---- sampling ---------------------------------------------------------------------------------------------


def draw(model, config, n=1, seed=0, **options):
    model.eval()
    with torch.inference_mode():
        return lapgan.sample(model, config, lapgan.SampleOptions(**options), SampleRequest(n, seed, CPU))


def test_sampling_shapes_and_the_pyramid_picture() -> None:
    model, prepared, _ = tiny_model()
    config = prepared.config
    assert draw(model, config, n=3).pixels.shape == (3, 32, 32, 1)
    pyramid = draw(model, config, n=2, levels=True)
    assert pyramid.pixels.shape == (6, 32, 32, 1) and pyramid.columns == 3
    rows = pyramid.pixels.reshape(2, 3, 32, 32)
    assert np.array_equal(rows[:, 2], draw(model, config, n=2).pixels[..., 0])  # the finest level IS the sample
    coarse = rows[:, 0].reshape(2, 8, 4, 8, 4)  # 8x8 enlarged 4x: every 4x4 block is one value
    assert (coarse == coarse[:, :, :1, :, :1]).all()
    classes = draw(model, config, label="all")
    assert classes.pixels.shape == (100, 32, 32, 1) and classes.columns == 10
    sevens = draw(model, config, n=2, label="7", levels=True)
    assert sevens.pixels.shape == (6, 32, 32, 1)


def test_a_sample_is_recalled_by_its_seed() -> None:
    model, prepared, _ = tiny_model()
    grid = draw(model, prepared.config, n=3, seed=5, label="4").pixels
    assert np.array_equal(grid[2], draw(model, prepared.config, n=1, seed=7, label="4").pixels[0])


@pytest.mark.parametrize("options,message", [
    ({"label": "12"}, "--label '12': not one of this model's classes"),
    ({"label": "all", "levels": True}, "--levels shows one sample's pyramid per row"),
    ({"neighbours": 2, "levels": True}, "--levels and --neighbours are separate pictures"),
])
def test_bad_label_and_levels_usage_are_usage_errors(options, message) -> None:
    model, prepared, _ = tiny_model()
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        draw(model, prepared.config, **options)


# ---- folders: RGB, unlabelled -> unconditional ------------------------------------------------------------


def write_photos(folder: Path, count: int, labelled: bool) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        place = folder / ("warm" if i % 2 else "cold") if labelled else folder
        place.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
        pixels[..., i % 3] = 255  # colour, so the folder loads as RGB
        Image.fromarray(pixels).save(place / f"{i}.png")


def test_an_unlabelled_rgb_folder_gives_an_unconditional_rgb_model(tmp_path) -> None:
    write_photos(tmp_path, 10, labelled=False)
    prepared = lapgan.prepare(str(tmp_path), lapgan.Config(**TINY, image_size=32), lapgan.TrainOptions())
    assert prepared.config.channels == 3 and prepared.config.num_classes == 0
    model = lapgan.build(prepared.config)
    assert draw(model, prepared.config, n=2, levels=True).pixels.shape == (6, 32, 32, 3)
    with pytest.raises(UsageError, match="this LAPGAN is unconditional"):
        draw(model, prepared.config, label="3")


def test_a_labelled_folder_is_class_conditional_unless_told_not(tmp_path) -> None:
    write_photos(tmp_path, 10, labelled=True)
    options = lapgan.TrainOptions()
    prepared = lapgan.prepare(str(tmp_path), lapgan.Config(**TINY), options)
    assert prepared.config.classes == ["cold", "warm"] and prepared.config.num_classes == 2
    plain = lapgan.prepare(str(tmp_path), lapgan.Config(**TINY, conditional=False), options)
    assert plain.config.num_classes == 0


def test_sizes_the_pyramid_cannot_halve_are_refused() -> None:
    with pytest.raises(UsageError, match="--image-size 34 with --pyramid-levels 3"):
        lapgan.prepare(None, lapgan.Config(**TINY, image_size=34), lapgan.TrainOptions())
    with pytest.raises(UsageError, match="--image-size 32 with --pyramid-levels 5"):  # 2x2: too coarse to start from
        lapgan.build(lapgan.Config(**TINY, pyramid_levels=5))


# ---- through the CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lapgan") / "run"
    process = run_gencli("train", "lapgan", "--preset", "tiny", "--steps", "3", "--out", str(out), "-q",
                         "--threads", "1")
    assert process.returncode == 0, process.stderr
    return out


def test_cli_trains_and_draws_the_pyramid(tiny_run) -> None:
    process = run_gencli("sample", "lapgan", "--weights", str(tiny_run), "--levels", "-n", "2", "--label", "3",
                         "-o", "-", "-q")
    assert process.returncode == 0, process.stderr
    assert Image.open(io.BytesIO(process.stdout)).size == (3 * 34 + 2, 2 * 34 + 2)  # 3 levels x 2 samples


@pytest.mark.parametrize("args", [["--label", "dog"], ["--label", "all", "--levels"],
                                  ["--levels", "--neighbours", "1"], ["--levels", "3"]])
def test_cli_usage_errors_are_one_line(tiny_run, args) -> None:
    process = run_gencli("sample", "lapgan", "--weights", str(tiny_run), "-o", "-", *args)
    assert process.returncode != 0 and process.stdout == b""
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gencli: error: "), process.stderr


@pytest.mark.skipif(not (lapgan.bundled_weights / "model.safetensors").is_file(), reason="no bundled lapgan weights")
def test_bundled_lapgan_class_rows_are_their_class(tmp_path) -> None:
    """`gencli sample lapgan --label all -o grid.png`: the shared classifier reads the rows' central 28x28
    windows as the row's class, at least 90% of the time (issue 14); the bundle reaches 98% at seeds 0-2."""
    from gencli.metrics.digits import classifier_for, embed

    process = run_gencli("sample", "lapgan", "--label", "all", "-o", str(tmp_path / "grid.png"), "-q")
    assert process.returncode == 0, process.stderr
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    tiles = np.stack([grid[2 + r * 34:2 + r * 34 + 32, 2 + c * 34:2 + c * 34 + 32]
                      for r in range(10) for c in range(10)])[:, 2:30, 2:30]
    _, predicted = embed(classifier_for(embedded("train", 28)), torch.from_numpy(tiles)[:, None].float() / 255)
    accuracy = float((predicted == torch.arange(10).repeat_interleave(10)).float().mean())
    assert accuracy >= 0.90, f"only {accuracy:.0%} of the class rows are recognised as their class"


def test_evaluate_names_the_splits_it_scored() -> None:
    """The JSON and the card say which digits were scored, as gan/dcgan/cgan's evaluate does."""
    model, prepared, _ = tiny_model()
    scored: list[str] = []
    with torch.inference_mode():
        lapgan.evaluate(model.eval(), prepared.config, lapgan.EvalOptions(samples=20),
                        EvalRequest(None, torch.device("cpu"), 0, describe_data=scored.append))
    assert len(scored) == 1
    assert "mnist-5k test split" in scored[0] and "4,000 of" in scored[0]
