"""dbm: the shared contract, AIS and the variational bound against exact enumeration, and the training phases."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from gencli.plugin import Text, SampleRequest
from gencli.testing import PluginContract
from gencli_boltzmann import DBMConfig, DBMTrainOptions, SampleOptions, common, dbm_plugin
from gencli_boltzmann.dbm import DBM, ais_log_partition, base_log_partition, loss, variational_bound


class TestDBMContract(PluginContract):
    plugin = dbm_plugin
    tiny_config = {"hidden1": 12, "hidden2": 6, "chains": 4}
    # 10 steps per pretraining phase, so the contract's 30 steps pass through all three phases.
    tiny_train_options = {"pretrain_steps": 10}
    tiny_sample_options = {"gibbs_steps": 5}
    tiny_eval_options = {"ais_runs": 8, "ais_betas": 200, "mean_field_steps": 5}


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def random_dbm(image_size: int, hidden1: int, hidden2: int, scale: float, seed: int = 0) -> DBM:
    torch.manual_seed(seed)
    model = DBM(DBMConfig(image_size=image_size, hidden1=hidden1, hidden2=hidden2, chains=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, scale)
    return model


def exact_log_z(model: DBM) -> float:
    """Sum over every h1 with v and h2 summed out analytically."""
    h1 = states(model.weight1.shape[1])
    w1, w2, b, c1, c2 = (t.detach().double() for t in (model.weight1, model.weight2, model.visible_bias,
                                                        model.hidden1_bias, model.hidden2_bias))
    terms = h1 @ c1 + F.softplus(h1 @ w1.T + b).sum(-1) + F.softplus(h1 @ w2 + c2).sum(-1)
    return float(torch.logsumexp(terms, 0))


def test_ais_matches_the_exact_log_partition_function() -> None:
    model = random_dbm(image_size=28, hidden1=12, hidden2=10, scale=0.3)
    with torch.no_grad():
        model.weight1.mul_(2)  # strong visible couplings, far from the base model
        base_bias = torch.zeros(12)
        log_w = ais_log_partition(model, base_bias, runs=64, betas=common.ais_betas(3000),
                                  generator=torch.Generator().manual_seed(0))
    log_mean, spread = common.log_mean_exp_with_spread(log_w)
    estimate, exact = base_log_partition(model, base_bias) + log_mean, exact_log_z(model)
    assert abs(exact - base_log_partition(model, base_bias)) > 20
    assert abs(estimate - exact) < 0.1, f"AIS {estimate:.4f} vs exact {exact:.4f} (spread {spread:.4f})"


def test_variational_bound_is_below_and_near_the_exact_log_probability() -> None:
    model = random_dbm(image_size=2, hidden1=5, hidden2=3, scale=0.8)
    v = states(4).float()  # every visible configuration
    h1, h2 = states(5), states(3)
    w1, w2, b, c1, c2 = (t.detach().double() for t in (model.weight1, model.weight2, model.visible_bias,
                                                        model.hidden1_bias, model.hidden2_bias))
    # log p*(v) = log sum_{h1, h2} exp(-E) = logsumexp_h1 [v.W1.h1 + b.v + c1.h1 + sum softplus(h1.W2 + c2)]
    per_h1 = (v.double() @ w1 @ h1.T + (v.double() @ b)[:, None] + (h1 @ c1)[None]
              + F.softplus(h1 @ w2 + c2).sum(-1)[None])  # (16 v, 32 h1)
    exact = torch.logsumexp(per_h1, 1)
    bound = variational_bound(model, v, steps=50)
    assert bool((bound <= exact + 1e-6).all())
    assert float((exact - bound).max()) < 1.0  # mean-field is close for such a small model


def test_training_phases_follow_the_step_counter() -> None:
    torch.manual_seed(0)
    model = DBM(DBMConfig(image_size=4, hidden1=6, hidden2=3, chains=3))
    batch = {"binary": (torch.rand(5, 1, 4, 4) < 0.5).float()}
    options = DBMTrainOptions(pretrain_steps=2)
    phases = []
    for _ in range(5):
        for p in model.parameters():
            p.grad = None
        value, metrics = loss(model, batch, options)
        value.backward()
        phases.append(metrics["phase"])
        touched = {name for name, p in model.named_parameters() if p.grad is not None}
        expected = {1.0: {"weight1", "visible_bias", "hidden1_bias"},
                    2.0: {"weight2", "top_rbm_bias", "hidden2_bias"},
                    3.0: {"weight1", "weight2", "visible_bias", "hidden1_bias", "hidden2_bias"}}[metrics["phase"]]
        assert touched == expected, (metrics["phase"], touched)
    assert phases == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert int(model.state_dict()["step"]) == 5
    assert torch.count_nonzero(model.chains) > 0  # the joint phase started its persistent chains


def test_features_reports_both_layers(tmp_path) -> None:
    from PIL import Image

    model = DBM(DBMConfig(hidden1=12, hidden2=6, chains=2)).eval()
    path = tmp_path / "digit.png"
    Image.new("L", (28, 28), 255).save(path)
    with torch.no_grad():
        text = dbm_plugin.sample(model, DBMConfig(hidden1=12, hidden2=6), SampleOptions(features=path, top=2),
                          SampleRequest(1, 0, torch.device("cpu")))
    assert isinstance(text, Text)
    lines = "".join(text.chunks).splitlines()
    assert len(lines) == 6 and lines[0].startswith("most active layer-1") and lines[3].startswith("most active "
                                                                                                  "layer-2")


def test_joint_gradient_is_mean_field_minus_chain_statistics() -> None:
    """Phase 3's surrogate gives W1's update <v mu1>_data - <p(v|h1) h1>_chains and W2's <mu1 mu2> - <h1 p(h2|h1)>."""
    torch.manual_seed(3)
    model = DBM(DBMConfig(image_size=3, hidden1=4, hidden2=3, chains=5))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    data = (torch.rand(6, 9) < 0.5).float()
    options = DBMTrainOptions(pretrain_steps=0, mean_field_steps=7, weight_decay=0.0, joint_lr_scale=0.5)
    value, metrics = loss(model, {"binary": data.reshape(6, 1, 3, 3)}, options)
    value.backward()
    assert metrics["phase"] == 3.0
    mu1, mu2 = model.mean_field(data, 7)
    h1 = model.chain_hidden1
    v_model, h2_model = model.visible_probability(h1), model.hidden2_probability(h1)
    update_w1 = data.T @ mu1 / 6 - v_model.T @ h1 / 5
    update_w2 = mu1.T @ mu2 / 6 - h1.T @ h2_model / 5
    torch.testing.assert_close(model.weight1.grad, -0.5 * update_w1.detach())
    torch.testing.assert_close(model.weight2.grad, -0.5 * update_w2.detach())


def test_quick_caps_the_ais_work_reports_progress_and_prints_the_standard_error(capsys) -> None:
    """`gencli evaluate dbm` ran 20 minutes on a loaded machine with no sign of life: --quick caps the AIS work
    (typed smaller values stand), the AIS loop reports progress, and the note gives log Z's standard error."""
    from gencli.plugin import EvalRequest
    from gencli_boltzmann import DBMEvalOptions
    from gencli_boltzmann.dbm import QUICK_AIS, ais_size, evaluate

    assert ais_size(DBMEvalOptions(quick=True)) == QUICK_AIS
    assert ais_size(DBMEvalOptions(quick=True, ais_runs=5, ais_betas=100)) == (5, 100)
    assert ais_size(DBMEvalOptions()) == (100, 14500)
    model = random_dbm(4, 6, 3, 0.3)
    calls = []
    options = DBMEvalOptions(quick=True, ais_runs=4, ais_betas=30, mean_field_steps=3)
    request = EvalRequest("mnist-5k", torch.device("cpu"), 0, progress=lambda done, total: calls.append((done, total)))
    metrics = evaluate(model, DBMConfig(image_size=4, hidden1=6, hidden2=3, chains=2), options, request)
    assert metrics["ais_runs"] == 4 and metrics["ais_temperatures"] == 30
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)
    note = capsys.readouterr().err
    assert "quick estimate (4 AIS runs x 30 temperatures)" in note
    assert f"log Z standard error {metrics['log_z_std_nats']:.2f} nats" in note


def test_a_tiny_run_ends_with_the_presets_quick_evaluation(tmp_path) -> None:
    """`--preset tiny` trains in seconds; its closing evaluation uses the preset's AIS settings (10 x 500), not
    the full 100 x 14,500 that made a two-step smoke run take half a minute."""
    import re
    import subprocess
    import sys

    out = tmp_path / "run"
    process = subprocess.run([sys.executable, "-m", "gencli", "train", "dbm", "--preset", "tiny", "--steps", "2",
                              "--out", str(out), "-q"], capture_output=True, text=True, timeout=300,
                             env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert process.returncode == 0, process.stderr
    card = (out / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^\| ais_runs \| 10 \|$", card, flags=re.M)
    assert re.search(r"^\| ais_temperatures \| 500 \|$", card, flags=re.M)
