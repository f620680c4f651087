"""rbm: the shared contract, AIS against an exactly enumerable RBM, and the CD surrogate's gradient."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

from gencli.errors import UsageError
from gencli.plugin import Images, SampleRequest, Text
from gencli.testing import PluginContract
from gencli_boltzmann import RBMConfig, RBMTrainOptions, SampleOptions, rbm_plugin
from gencli_boltzmann import common
from gencli_boltzmann.rbm import RBM, ais_log_partition, base_log_partition, loss, pseudo_log_likelihood

TINY = {"hidden": 12, "chains": 4}


class TestRBMContract(PluginContract):
    plugin = rbm_plugin
    tiny_config = TINY
    tiny_sample_options = {"gibbs_steps": 5}
    tiny_eval_options = {"ais_runs": 8, "ais_betas": 200}


def exact_log_z(model: RBM) -> float:
    """log Z by enumerating every hidden state: Z = sum_h exp(c.h) prod_i (1 + exp(b_i + W_i.h))."""
    hidden = model.weight.shape[1]
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=hidden)), dtype=torch.float64)  # (2^H, H)
    w, b, c = (t.detach().double() for t in (model.weight, model.visible_bias, model.hidden_bias))
    log_terms = states @ c + F.softplus(states @ w.T + b).sum(-1)
    return float(torch.logsumexp(log_terms, 0))


def structured_rbm(seed: int = 0) -> RBM:
    """A small RBM far from its base model: 784 visible, 12 hidden units with large digit-shaped weights."""
    torch.manual_seed(seed)
    model = RBM(RBMConfig(hidden=12, chains=2))
    images = common.fixed_binarization(common.data_split(None, "test", 28, 1), "test").flatten(1)
    with torch.no_grad():
        prototypes = images[torch.arange(12) * 40]  # (12, V) twelve digits
        model.weight.copy_((2 * prototypes - 1).T * 0.6)
        model.visible_bias.copy_(torch.randn(784) * 0.5 - 1.0)
        model.hidden_bias.copy_(-0.3 * prototypes.sum(-1) * 0.6 + torch.randn(12))
    return model


def test_ais_matches_the_exact_log_partition_function() -> None:
    model = structured_rbm()
    base_rate = common.training_images(None, 28).pixels.float().flatten(1).mean(0) / 255
    base_bias = common.base_rate_bias(base_rate, 4000)
    with torch.no_grad():
        log_w = ais_log_partition(model.weight, model.visible_bias, model.hidden_bias, base_bias, runs=64,
                                  betas=common.ais_betas(3000), generator=torch.Generator().manual_seed(0))
    log_mean, spread = common.log_mean_exp_with_spread(log_w)
    estimate = base_log_partition(base_bias, 12) + log_mean
    exact = exact_log_z(model)
    print(f"AIS {estimate:.4f} exact {exact:.4f} spread {spread:.4f}")
    assert abs(estimate - exact) < 0.1, f"AIS {estimate:.4f} vs exact {exact:.4f} (spread {spread:.4f})"
    assert spread < 0.3
    assert abs(exact - base_log_partition(base_bias, 12)) > 20  # far from the base model: a real test of AIS


def test_loss_gradient_is_the_cd_statistics_difference() -> None:
    """The surrogate's gradient equals the PCD update <v h>_data - <v h>_negative (negated), nothing else."""
    torch.manual_seed(1)
    model = RBM(RBMConfig(image_size=4, hidden=5, chains=6))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    data = (torch.rand(6, 16) < 0.5).float()
    value, _ = loss(model, {"binary": data.reshape(6, 1, 4, 4)}, RBMTrainOptions(method="pcd", k=2))
    value.backward()
    negative = model.chains  # where the chains ended: the negative samples of this step
    assert torch.count_nonzero(negative) > 0
    h_data, h_negative = model.hidden_probability(data), model.hidden_probability(negative)
    n = data.shape[0]
    update_w = (data.T @ h_data - negative.T @ h_negative) / n  # <v h>_data - <v h>_model
    torch.testing.assert_close(model.weight.grad, -update_w.detach())
    torch.testing.assert_close(model.visible_bias.grad, -(data - negative).mean(0))
    torch.testing.assert_close(model.hidden_bias.grad, -(h_data - h_negative).mean(0).detach())


def test_pcd_chains_persist_in_the_state_dict_and_cd_leaves_them_alone() -> None:
    torch.manual_seed(0)
    model = RBM(RBMConfig(image_size=4, hidden=5, chains=3))
    batch = {"binary": (torch.rand(3, 1, 4, 4) < 0.5).float()}
    loss(model, batch, RBMTrainOptions(method="cd"))
    assert torch.count_nonzero(model.state_dict()["chains"]) == 0
    loss(model, batch, RBMTrainOptions(method="pcd"))
    assert torch.count_nonzero(model.state_dict()["chains"]) > 0


def test_pseudo_log_likelihood_matches_flipping_each_bit() -> None:
    torch.manual_seed(2)
    model = RBM(RBMConfig(image_size=3, hidden=4, chains=1))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)
    v = (torch.rand(2, 9) < 0.5).float()
    expected = torch.zeros(2)
    for i in range(9):
        flipped = v.clone()
        flipped[:, i] = 1 - flipped[:, i]
        expected += F.logsigmoid(model.free_energy(flipped) - model.free_energy(v)).detach()
    torch.testing.assert_close(pseudo_log_likelihood(model, v), expected, rtol=1e-5, atol=1e-5)


def test_ais_schedule_follows_salakhutdinov_and_murray() -> None:
    betas = common.ais_betas(14500)
    assert len(betas) == 14501 and betas[0] == 0 and betas[-1] == 1
    assert bool((betas[1:] > betas[:-1]).all())
    assert int((betas < 0.5).sum()) == 500 and int(((betas >= 0.5) & (betas < 0.9)).sum()) == 4000
    with pytest.raises(UsageError):
        common.ais_betas(2)


def test_filters_chain_grid_and_features() -> None:
    model = RBM(RBMConfig(hidden=12, chains=2)).eval()
    config = RBMConfig(hidden=12, chains=2)
    request = SampleRequest(3, 0, torch.device("cpu"))
    with torch.no_grad():
        filters = rbm_plugin.sample(model, config, SampleOptions(filters=True), SampleRequest(1, 0, torch.device("cpu")))
        chain = rbm_plugin.sample(model, config, SampleOptions(chain=True, gibbs_steps=20, snapshots=5), request)
    assert isinstance(filters, Images) and filters.pixels.shape == (12, 28, 28, 1)
    assert filters.pixels.min() == 0 and filters.pixels.max() == 255  # each filter stretched to full range
    assert chain.pixels.shape == (15, 28, 28, 1) and chain.columns == 5


def test_features_lists_the_most_active_units(tmp_path) -> None:
    from PIL import Image

    model = RBM(RBMConfig(hidden=12, chains=2)).eval()
    with torch.no_grad():
        model.hidden_bias.copy_(torch.arange(12.0) - 6)  # unit 11 the most active, then 10, 9 ...
    path = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(path)
    with torch.no_grad():
        text = rbm_plugin.sample(model, RBMConfig(hidden=12), SampleOptions(features=path, top=3),
                          SampleRequest(1, 0, torch.device("cpu")))
    assert isinstance(text, Text)
    lines = "".join(text.chunks).splitlines()
    assert [int(line.split()[2]) for line in lines[1:]] == [11, 10, 9]
    assert lines[1].split()[3:] == ["p(on)", f"{torch.sigmoid(torch.tensor(5.0)).item():.4f}", "input", "+5.00"]


def test_sparsity_target_moves_only_the_hidden_biases() -> None:
    """The sparsity term adds cost * (mean activation - target) to each hidden bias's gradient, nothing else."""
    data = (torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    grads = []
    for target in (0.0, 0.05):
        torch.manual_seed(4)
        model = RBM(RBMConfig(image_size=4, hidden=3, chains=5))
        value, _ = loss(model, {"binary": data}, RBMTrainOptions(sparsity_target=target, sparsity_cost=0.5))
        value.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    mean_activation = model.hidden_probability(data.flatten(1)).mean(0).detach()
    torch.testing.assert_close(grads[1]["hidden_bias"] - grads[0]["hidden_bias"], 0.5 * (mean_activation - 0.05))
    torch.testing.assert_close(grads[1]["weight"], grads[0]["weight"])


@pytest.mark.parametrize("options", [{"method": "cd", "k": 2}, {"method": "pcd", "k": 3, "sparsity_target": 0.05}])
def test_hand_written_gradients_match_autograd_for_each_method(options: dict) -> None:
    """The engine trains through rbm.gradients; the contract's check, for CD-k and PCD-k with sparsity."""
    contract = TestRBMContract()
    contract.tiny_train_options = options
    contract.test_set_gradients_equal_the_loss_gradients()


def test_bernoulli16_draws_each_probability_and_is_seeded() -> None:
    probability = torch.tensor([0.0, 1e-3, 0.25, 0.5, 0.9, 1.0]).repeat(200_000, 1)  # the lanes of 64-bit draws
    torch.manual_seed(0)
    samples = common.bernoulli16(probability)
    assert samples.dtype == probability.dtype and set(samples.unique().tolist()) <= {0.0, 1.0}
    frequency = samples.mean(0)
    assert frequency[0] == 0 and frequency[-1] == 1
    # within 5 standard errors of p, for every column (each column mixes all four 16-bit lanes)
    error = (probability[0] * (1 - probability[0]) / probability.shape[0]).sqrt()
    assert ((frequency - probability[0]).abs() <= 5 * error + 1e-9).all(), frequency
    torch.manual_seed(0)
    assert torch.equal(common.bernoulli16(probability), samples)


def test_training_from_the_command_line_uses_the_hand_written_update(tmp_path) -> None:
    """`gencli train rbm` runs the gradients hook end to end (checkpoint, evaluation at the end); --compile,
    which only compiles a forward pass, says it has no effect instead of silently doing nothing."""
    run = tmp_path / "run"
    process = run_gencli("train", "rbm", "--preset", "tiny", "--steps", "4", "--compile", "--out", str(run))
    assert process.returncode == 0, process.stderr
    assert "--compile has no effect: rbm computes its gradients itself" in str(process.stderr)
    assert (run / "model.safetensors").is_file() and (run / "training_state").is_dir()


def copying_rbm(patterns: torch.Tensor) -> RBM:
    """An RBM whose Gibbs sweep copies its visible state (W = 30 I, biases -15): a chain stays where it starts."""
    side = int(patterns.shape[1] ** 0.5)
    model = RBM(RBMConfig(image_size=side, hidden=side * side, chains=patterns.shape[0]))
    with torch.no_grad():
        model.weight.copy_(torch.eye(side * side) * 30.0)
        model.visible_bias.fill_(-15.0)
        model.hidden_bias.fill_(-15.0)
        model.chains.copy_(patterns)
    return model


def test_sampling_continues_the_saved_persistent_chains_by_default() -> None:
    patterns = torch.eye(9)[:5]  # five saved chains, each one lit pixel of a 3x3 image
    model = copying_rbm(patterns)
    config = RBMConfig(image_size=3, hidden=9, chains=5)
    request = SampleRequest(7, 3, torch.device("cpu"))
    images = rbm_plugin.sample(model, config, SampleOptions(gibbs_steps=3), request).pixels  # (7, 3, 3, 1)
    lit = torch.from_numpy(images.reshape(7, 9) > 127).float()
    assert all(any(torch.equal(row, p) for p in patterns) for row in lit)  # every sample is a saved chain
    assert len({tuple(row.tolist()) for row in lit}) == 5  # 7 samples cycle through all 5 chains
    other = rbm_plugin.sample(model, config, SampleOptions(gibbs_steps=3), SampleRequest(7, 4, torch.device("cpu")))
    assert not (other.pixels == images).all()  # another seed picks another order
    noise = rbm_plugin.sample(model, config, SampleOptions(gibbs_steps=3, start="noise"), request).pixels
    assert (noise.reshape(7, 9) > 127).sum(1).mean() > 2  # uniform noise keeps about half the pixels lit


def test_auto_precision_keeps_fp32_on_a_cpu_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """--precision auto stays in fp32 for the rbm on any CPU, with native bf16 or without, and the recorded reason
    names the fp32 kernels; a plugin that gives no reason keeps the generic one."""
    from types import SimpleNamespace

    from gencli import precision

    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_bf16", lambda native=native: precision.Bf16Support(native, "test CPU"))
        chosen = precision.resolve("auto", "cpu", rbm_plugin)
        assert chosen.name == "fp32" and not chosen.warning
        assert "numba kernels" in chosen.reason and "does not declare" not in chosen.reason
    assert precision.resolve("auto", "cuda", rbm_plugin).name == "bf16"
    generic = precision.resolve("auto", "cpu", SimpleNamespace(name="toy"))
    assert generic.name == "fp32" and "toy does not declare supports_bf16 = True" in generic.reason
