"""vae: the shared contract, plus the bounds, the likelihoods, training and the sampling modes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.data.images import mnist
from gencli.errors import UsageError
from gencli.plugin import EvalRequest, SampleRequest
from gencli.testing import PluginContract
from gencli_vae import Config, EvalOptions, SampleOptions, TrainOptions, plugin
from gencli_vae import likelihoods
from gencli_vae.bounds import analytic_kl, elbo_estimate, iwae_bound
from gencli_vae.model import VariationalAutoencoder, held_out, kl_weight

TINY_MLP = {"arch": "mlp", "latent_size": 4, "hidden_size": 32}
TINY_CONV = {"arch": "conv", "latent_size": 6, "hidden_size": 32, "conv_channels": 4}
CPU = torch.device("cpu")


class TestVAEContract(PluginContract):
    plugin = plugin
    tiny_config = TINY_MLP
    tiny_eval_options = {"k": 3, "max_images": 40}


def tiny_model(**overrides) -> tuple[VariationalAutoencoder, Config]:
    torch.manual_seed(0)
    config = Config(**{**TINY_CONV, **overrides})
    config = plugin.prepare(None, config, TrainOptions()).config
    return plugin.build(config).eval(), config


@pytest.fixture(scope="module")
def test_digits() -> torch.Tensor:
    """The binarized test split in model space (500, 1, 28, 28)."""
    return held_out(None, Config(likelihood="bernoulli", channels=1))


def score(model, config, k: int, images: int = 0, seed: int = 0) -> dict[str, float]:
    with torch.inference_mode():
        return plugin.evaluate(model.eval(), config, EvalOptions(k=k, max_images=images), EvalRequest(None, CPU, seed))


# ---- the bounds ---------------------------------------------------------------------------------------------------


def test_iwae_with_one_sample_equals_the_elbo_for_the_same_noise(test_digits) -> None:
    """k=1: log w = log p(x|z) + log p(z) - log q(z|x), written out here with torch.distributions."""
    model, _ = tiny_model()
    x = test_digits[:16]
    noise = torch.randn(1, 16, model.latent_size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        bound = iwae_bound(model(x, noise=noise))
        mean, log_var = model.posterior(x)
        q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
        z = mean + q.scale * noise[0]
        log_px = torch.distributions.Bernoulli(logits=model.decode(z)).log_prob(x).flatten(1).sum(1)
        prior = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
        elbo = log_px + prior.log_prob(z).sum(1) - q.log_prob(z).sum(1)
    torch.testing.assert_close(bound, elbo, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(elbo_estimate(model(x, noise=noise)), elbo, rtol=1e-5, atol=1e-4)


def test_the_monte_carlo_kl_averages_to_the_closed_form(test_digits) -> None:
    model, _ = tiny_model(**TINY_MLP)
    with torch.no_grad():
        weights = model(test_digits[:8], k=5000, generator=torch.Generator().manual_seed(0))
        monte_carlo = (weights.log_qz - weights.log_pz).mean(0)
        closed_form = analytic_kl(weights.mean, weights.log_var).sum(-1)
    torch.testing.assert_close(monte_carlo, closed_form, rtol=0.02, atol=0.1)


def test_the_bound_does_not_fall_as_k_grows() -> None:
    """Averaged over the 500 test digits with a fixed seed: ELBO (k=1) <= IWAE k=10 <= IWAE k=100."""
    model, config = tiny_model(**TINY_MLP)
    log_likelihood = [-score(model, config, k)["nll_nats_per_image"] for k in (1, 10, 100)]
    assert log_likelihood[0] < log_likelihood[1] < log_likelihood[2], log_likelihood
    at_one = score(model, config, 1)
    assert at_one["elbo_gap_nats"] == pytest.approx(0.0, abs=1e-3)


def test_training_a_tiny_model_a_few_steps_improves_the_elbo() -> None:
    torch.manual_seed(0)
    options = TrainOptions()
    prepared = plugin.prepare(None, Config(**TINY_MLP), options)
    model = plugin.build(prepared.config)
    before = score(model, prepared.config, k=1, images=200)["elbo_nats_per_image"]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(60):
        loss, metrics = plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(step), 32), options)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(metrics) >= {"elbo", "kl", "recon"}
    assert metrics["elbo"] == pytest.approx(-(metrics["kl"] + metrics["recon"]), rel=1e-5)
    after = score(model, prepared.config, k=1, images=200)["elbo_nats_per_image"]
    assert after > before + 50, (before, after)  # an untrained decoder starts near 784 ln 2 = 543 nats


def test_iwae_objective_trains_and_reports_its_bound() -> None:
    """The IWAE loss is minus its bound, the bound sits above the ELBO, and training on it raises the bound."""
    torch.manual_seed(0)
    options = TrainOptions(objective="iwae", k=4)
    prepared = plugin.prepare(None, Config(**TINY_MLP), options)
    model = plugin.build(prepared.config).train()
    fixed = prepared.data.batch(torch.Generator().manual_seed(0), 32)
    loss, metrics = plugin.loss(model, fixed, options)
    assert loss.dim() == 0 and metrics["iwae"] == pytest.approx(-float(loss.detach()))
    assert metrics["iwae"] >= metrics["elbo"] - 5.0  # a tighter bound, up to Monte Carlo noise
    start = metrics["iwae"]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(40):
        step_loss, _ = plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(step + 1), 32), options)
        optimizer.zero_grad()
        step_loss.backward()
        optimizer.step()
    _, after = plugin.loss(model, fixed, options)
    assert after["iwae"] > start + 50, (start, after["iwae"])  # an untrained decoder starts near -543 nats


def test_kl_warmup_rises_linearly_and_counts_training_steps() -> None:
    options = TrainOptions(kl_warmup=4)
    prepared = plugin.prepare(None, Config(**TINY_MLP), options)
    model = plugin.build(prepared.config).train()
    weights = []
    for step in range(6):
        weights.append(kl_weight(model, options))
        plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(step), 4), options)
    assert weights == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert int(model.steps_trained) == 6 and float(model.kl_per_dim.sum()) > 0


# ---- likelihoods --------------------------------------------------------------------------------------------------


def test_discretized_logistic_sums_to_one_over_the_256_levels() -> None:
    levels = torch.arange(256, dtype=torch.float32) / 127.5 - 1.0  # every possible pixel value
    location = torch.tensor([-1.2, -0.3, 0.0, 0.9, 0.999])
    log_scale = torch.tensor([-6.0, -3.0, -1.0, 0.5, -4.5])
    params = torch.stack([location, log_scale])[None, :, :, None].expand(256, 2, 5, 1)  # (256, 2C, H=5, W=1)
    x = levels[:, None, None, None].expand(256, 1, 5, 1)
    per_level = likelihoods._discretized_logistic(*likelihoods._logistic_params(params), x)  # (256, 1, 5, 1)
    torch.testing.assert_close(per_level.exp().sum(0).flatten(), torch.ones(5), rtol=0, atol=2e-3)


def test_folder_of_rgb_images_gets_a_logistic_decoder(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    prepared = plugin.prepare(str(tmp_path), Config(**TINY_CONV, image_size=8), TrainOptions())
    assert prepared.config.likelihood == "logistic" and prepared.config.channels == 3
    model = plugin.build(prepared.config)
    loss, _ = plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(0), 4), TrainOptions())
    assert math.isfinite(float(loss.detach()))
    model.eval()
    with torch.inference_mode():
        metrics = plugin.evaluate(model, prepared.config, EvalOptions(k=4), EvalRequest(str(tmp_path), CPU, 0))
        images = plugin.sample(model, prepared.config, SampleOptions(), SampleRequest(3, 0, CPU))
    assert metrics["test_images"] == 1 and 0 < metrics["bits_per_dim"] < 20
    assert images.pixels.shape == (3, 8, 8, 3)


# ---- sampling modes -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("digits")
    test = mnist("test")
    paths = []
    for name, row in (("a", 0), ("b", 57)):
        Image.fromarray(test.pixels[row, 0].numpy()).save(folder / f"{name}.png")
        paths.append(folder / f"{name}.png")
    return paths


def draw_grid(model, config, n: int = 1, seed: int = 0, **options):
    with torch.inference_mode():
        return plugin.sample(model, config, SampleOptions(**options), SampleRequest(n, seed, CPU))


def test_interpolation_end_frames_are_the_reconstructions(digit_files) -> None:
    model, config = tiny_model()
    with torch.no_grad():  # a random decoder is almost flat: sharpen it so the frames differ visibly
        model.decoder[-1].weight.mul_(20.0)
    pairs = draw_grid(model, config, reconstruct=digit_files)
    walk = draw_grid(model, config, interpolate=digit_files, steps=6)
    assert pairs.columns == 2 and walk.columns == 6 and walk.pixels.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(walk.pixels[0], pairs.pixels[1])
    np.testing.assert_array_equal(walk.pixels[-1], pairs.pixels[3])
    assert not np.array_equal(walk.pixels[0], walk.pixels[-1])
    # the inner frames move from one end to the other
    distance_to_start = [np.abs(f.astype(int) - walk.pixels[0].astype(int)).sum() for f in walk.pixels]
    assert distance_to_start[1] < distance_to_start[4] < distance_to_start[5]


def test_reconstructions_sit_beside_their_inputs(digit_files) -> None:
    model, config = tiny_model()
    grid = draw_grid(model, config, reconstruct=digit_files)
    assert grid.pixels.shape == (4, 28, 28, 1)
    assert set(np.unique(grid.pixels[0])) <= {0, 255}  # the binarized input a Bernoulli model reads


def test_prior_interpolation_gives_one_row_per_sample() -> None:
    model, config = tiny_model()
    grid = draw_grid(model, config, n=3, interpolate_prior=True, steps=5)
    assert grid.columns == 5 and grid.pixels.shape == (15, 28, 28, 1)


def test_traversal_rows_vary_the_most_used_dimensions_first() -> None:
    model, config = tiny_model()
    with torch.no_grad():
        model.kl_per_dim.copy_(torch.tensor([0.0, 3.0, 0.1, 2.0, 0.0, 0.0]))
    grid = draw_grid(model, config, traverse=True, dims=2, steps=5, span=2.0)
    assert grid.columns == 5 and grid.pixels.shape == (10, 28, 28, 1)
    z = torch.zeros(5, model.latent_size)
    z[:, 3] = torch.linspace(-2.0, 2.0, 5)  # the second row: dimension 3, the second most used
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(z))
    np.testing.assert_array_equal(grid.pixels[5:], (expected * 255).round().to(torch.uint8).permute(0, 2, 3, 1))


@pytest.mark.parametrize("options, message", [
    ({"interpolate": [Path("a.png")]}, "exactly two images"),
    ({"reconstruct": [Path("a.png")], "traverse": True}, "choose one of"),
    ({"around": Path("a.png")}, "goes with --traverse"),
    ({"interpolate_prior": True, "steps": 1}, "--steps"),
    ({"reconstruct": [Path("/nonexistent/x.png")]}, "no such image file"),
])
def test_bad_sampling_options_are_usage_errors(options, message) -> None:
    model, config = tiny_model()
    with pytest.raises(UsageError, match=message):
        draw_grid(model, config, **options)


def test_conv_needs_an_image_size_divisible_by_four() -> None:
    with pytest.raises(UsageError, match="multiple of 4"):
        plugin.build(Config(image_size=30))


# ---- the command line with the bundled weights ------------------------------------------------------------------


def gencli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "HF_"))}
    env.update({"NO_COLOR": "1", "OMP_NUM_THREADS": "1"})
    return subprocess.run([sys.executable, "-m", "gencli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(plugin.bundled_weights is None or not (plugin.bundled_weights / "model.safetensors").is_file(),
                    reason="no bundled weights")
def test_cli_interpolates_between_two_files_with_the_bundled_model(digit_files, tmp_path) -> None:
    """Through the real command line: the walk's end tiles are the tiles of `--reconstruct`'s output."""
    walk, pairs = tmp_path / "walk.png", tmp_path / "pairs.png"
    files = [str(digit_files[0]), str(digit_files[1])]
    result = gencli("sample", "vae", "--interpolate", files[0], "--interpolate", files[1], "--steps", "7",
                    "-o", str(walk), "-q")
    assert result.returncode == 0, result.stderr
    result = gencli("sample", "vae", "--reconstruct", files[0], "--reconstruct", files[1], "-o", str(pairs), "-q")
    assert result.returncode == 0, result.stderr

    def tile(path: Path, row: int, column: int) -> np.ndarray:  # the writer's grid: 2-pixel gaps
        y, x = 2 + row * 30, 2 + column * 30
        return np.asarray(Image.open(path))[y:y + 28, x:x + 28]

    assert Image.open(walk).size == (2 + 7 * 30, 32) and "gencli" in Image.open(walk).text
    np.testing.assert_array_equal(tile(walk, 0, 0), tile(pairs, 0, 1))
    np.testing.assert_array_equal(tile(walk, 0, 6), tile(pairs, 1, 1))
    assert not np.array_equal(tile(walk, 0, 0), tile(walk, 0, 6))
    result = gencli("sample", "vae", "--interpolate", files[0], "-o", str(walk))
    assert result.returncode == 2 and "exactly two images" in result.stderr and "Traceback" not in result.stderr


# ---- DRAW --------------------------------------------------------------------------------------------------------

TINY_DRAW = {"arch": "draw", "latent_size": 3, "hidden_size": 16, "glimpses": 4}


class TestDRAWContract(PluginContract):
    plugin = plugin
    tiny_config = TINY_DRAW
    tiny_eval_options = {"k": 3, "max_images": 20}


def test_draw_filterbanks_are_normalised_and_a_full_grid_reads_the_image() -> None:
    """Each filter is a distribution over pixel positions; an N = size grid with stride 1, centred, with a
    tiny variance reads the image back unchanged (eqs. 19-27 of Gregor et al. 2015)."""
    from gencli_vae.draw import filterbanks

    fx, fy, gamma = filterbanks(torch.tensor([[0.3, -0.2, 0.0, -1.0, 0.1]]), 28, 5)  # every filter inside
    torch.testing.assert_close(fx.sum(-1), torch.ones(1, 5))
    torch.testing.assert_close(fy.sum(-1), torch.ones(1, 5))
    assert gamma.item() == pytest.approx(math.exp(0.1))
    # centre 0 -> the middle, 13.5; stride (size-1)/(N-1) = 1; means 13.5 + (i - 13.5) = i
    fx, fy, _ = filterbanks(torch.tensor([[0.0, 0.0, math.log(1e-3), 0.0, 0.0]]), 28, 28)
    image = torch.rand(1, 28, 28)
    torch.testing.assert_close(fy @ image @ fx.transpose(1, 2), image, rtol=0, atol=1e-4)


def test_draw_bound_matches_its_parts_and_decoding_the_posterior_path_reconstructs(test_digits) -> None:
    """k=1 with zero noise: log w = log p(x | mean path) + log p(mean path) - log q(mean path), and the
    decoder run alone on that code gives the same canvas as the joint pass."""
    model, _ = tiny_model(**TINY_DRAW)
    x = test_digits[:6]
    with torch.no_grad():
        weights = model(x, noise=torch.zeros(1, 6, model.latent_size))
        mean, log_var = model.posterior(x)
        logits = model.decode(mean)
        log_px = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
        q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
        prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
        expected = log_px + prior.log_prob(mean).sum(1) - q.log_prob(mean).sum(1)
    torch.testing.assert_close(weights.total()[0], expected, rtol=1e-5, atol=1e-3)
    assert model.latent_size == 4 * 3 and mean.shape == (6, 12)


def test_draw_canvases_show_every_glimpse_and_end_at_the_sample(tmp_path) -> None:
    model, config = tiny_model(**TINY_DRAW)
    request = SampleRequest(3, 0, CPU)
    with torch.inference_mode():
        grid = plugin.sample(model, config, SampleOptions(canvases=True), request)
        final = plugin.sample(model, config, SampleOptions(), request)
    assert grid.columns == 4 and grid.pixels.shape == (12, 28, 28, 1)
    assert np.array_equal(grid.pixels[3::4], final.pixels)  # the last canvas of each row is the sample


def test_canvases_need_a_draw_model_and_draw_needs_binary_images() -> None:
    model, config = tiny_model()
    with pytest.raises(UsageError, match="--arch draw"):
        plugin.sample(model, config, SampleOptions(canvases=True), SampleRequest(1, 0, CPU))
    with pytest.raises(UsageError, match="binary images"):
        plugin.build(Config(**TINY_DRAW, likelihood="logistic"))
