"""Sampling: seeds, latent walks, arithmetic, class rows and the nearest-neighbour check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gencli.data.images import ImageSet
from gencli.errors import UsageError
from gencli.plugin import SampleRequest
from gencli_gan import cgan, dcgan, gan, sampling
from gencli_gan.latents import interpolation, parse_arithmetic, save_latent, seed_latent, seed_latents

CPU = torch.device("cpu")


def tiny(plugin, **config):
    torch.manual_seed(0)
    defaults = {"z_dim": 8, "g_hidden": 16, "d_units": 8, "d_pieces": 2} if plugin is gan else \
        {"z_dim": 8, "base_channels": 4}
    config = plugin.Config(**{**defaults, **config})
    model = plugin.build(config).eval()
    with torch.no_grad():  # trained-looking statistics, so images differ visibly from seed to seed
        for module in model.generator.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_var.fill_(0.05)
    return model, config


def draw(plugin, model, config, n=1, seed=0, **options):
    with torch.inference_mode():
        return plugin.sample(model, config, plugin.SampleOptions(**options), SampleRequest(n, seed, CPU))


@pytest.mark.parametrize("plugin", [gan, dcgan], ids=["gan", "dcgan"])
def test_sample_i_of_a_grid_is_seed_plus_i(plugin) -> None:
    model, config = tiny(plugin)
    grid = draw(plugin, model, config, n=4, seed=10).pixels
    for i in range(4):
        assert np.array_equal(grid[i], draw(plugin, model, config, n=1, seed=10 + i).pixels[0])
    assert not np.array_equal(grid[0], grid[1])


@pytest.mark.parametrize("path", ["linear", "slerp"])
def test_interpolation_end_points_are_the_end_seeds_samples(path) -> None:
    model, config = tiny(dcgan)
    rows = draw(dcgan, model, config, n=2, seed=5, interpolate=True, steps=6, path=path)
    assert rows.columns == 6 and rows.pixels.shape[0] == 12
    for row, (first, last) in enumerate([(5, 6), (7, 8)]):
        assert np.array_equal(rows.pixels[row * 6], draw(dcgan, model, config, seed=first).pixels[0])
        assert np.array_equal(rows.pixels[row * 6 + 5], draw(dcgan, model, config, seed=last).pixels[0])


def test_slerp_keeps_the_norm_where_linear_dips() -> None:
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    spherical, straight = interpolation(a, b, 5, "slerp"), interpolation(a, b, 5, "linear")
    torch.testing.assert_close(spherical.norm(dim=1), torch.full((5,), 3.0))
    assert float(straight[2].norm()) == pytest.approx(3.0 / 2 ** 0.5)


def test_arithmetic_over_seeds_and_latent_files(tmp_path) -> None:
    model, config = tiny(dcgan)
    file = tmp_path / "smile.safetensors"
    save_latent(seed_latent(42, config.z_dim), file)
    terms, result = parse_arithmetic(f"3 - 8 + {file}", config.z_dim)
    torch.testing.assert_close(result, seed_latent(3, 8) - seed_latent(8, 8) + seed_latent(42, 8))
    assert [t for t, _ in terms] == ["3", "8", str(file)]
    row = draw(dcgan, model, config, arithmetic=f"3 - 8 + {file}")
    assert row.columns == 4 and row.pixels.shape[0] == 4
    assert np.array_equal(row.pixels[0], draw(dcgan, model, config, seed=3).pixels[0])
    expected = sampling.to_uint8(sampling.generate(model, result[None], None, CPU))
    assert np.array_equal(row.pixels[3], expected[0])
    _, compact = parse_arithmetic("3-8+12", 8)
    torch.testing.assert_close(compact, seed_latent(3, 8) - seed_latent(8, 8) + seed_latent(12, 8))
    for bad in ("3 -", "3 + + 4", "", str(tmp_path / "missing.safetensors")):
        with pytest.raises(UsageError):
            parse_arithmetic(bad, 8)


def test_nearest_neighbours_are_the_brute_force_nearest() -> None:
    generator = torch.Generator().manual_seed(0)
    pool, samples = torch.rand(30, 1, 4, 4, generator=generator), torch.rand(5, 1, 4, 4, generator=generator)
    found = sampling.nearest(samples, pool, 3)
    for i in range(5):
        distances = [float(((samples[i] - pool[j]) ** 2).sum()) for j in range(30)]
        assert found[i].tolist() == sorted(range(30), key=distances.__getitem__)[:3]
    assert sampling.nearest(pool[7:8], pool, 1).item() == 7  # a training image's nearest is itself


def test_neighbours_sit_beside_each_sample(monkeypatch) -> None:
    model, config = tiny(dcgan)
    pool = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    images = ImageSet(pool, torch.full((20,), -1), [], "random")
    monkeypatch.setattr(sampling, "training_images", lambda source, config: images)
    out = draw(dcgan, model, config, n=2, seed=0, neighbours=3)
    assert out.columns == 4 and out.pixels.shape[0] == 8
    plain = draw(dcgan, model, config, n=2, seed=0).pixels
    for row in range(2):
        assert np.array_equal(out.pixels[row * 4], plain[row])
        index = sampling.nearest(torch.from_numpy(plain[row:row + 1]).permute(0, 3, 1, 2).float() / 255,
                                 pool.float() / 255, 3)[0]
        for k in range(3):
            assert np.array_equal(out.pixels[row * 4 + 1 + k], pool[index[k]].permute(1, 2, 0).numpy())


def test_cgan_label_gives_that_class_and_all_gives_one_row_per_class() -> None:
    model, config = tiny(cgan)
    sevens = draw(cgan, model, config, n=3, seed=4, label="7").pixels
    z = seed_latents(4, 3, config.z_dim)
    expected = sampling.to_uint8(sampling.generate(model, z, torch.full((3,), 7), CPU))
    assert np.array_equal(sevens, expected)
    rows = draw(cgan, model, config, n=3, seed=4, label="all")
    assert rows.columns == 3 and rows.pixels.shape[0] == 30
    for digit in range(10):
        assert np.array_equal(rows.pixels[digit * 3:(digit + 1) * 3],
                              sampling.to_uint8(sampling.generate(model, z, torch.full((3,), digit), CPU)))
    assert draw(cgan, model, config, n=1, seed=4, label="all").pixels.shape[0] == 100  # 10 per row by default
    with pytest.raises(UsageError, match="not one of this model's classes"):
        draw(cgan, model, config, label="cat")


def test_conflicting_options_are_usage_errors() -> None:
    model, config = tiny(dcgan)
    with pytest.raises(UsageError):
        draw(dcgan, model, config, interpolate=True, arithmetic="1 + 2")
    with pytest.raises(UsageError):
        draw(dcgan, model, config, interpolate=True, neighbours=2)
    with pytest.raises(UsageError):
        draw(dcgan, model, config, interpolate=True, steps=1)
