"""The RBM's fp32 CPU step on numba kernels: the same gradients as autograd on the loss, the same samples as the
torch step from the same random bits, and its compiled code cached under ~/.cache/gencli/numba."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gencli.testing import PluginContract
from gencli_boltzmann import common, kernels, rbm, rbm_plugin


class WideRBM(PluginContract):  # not collected: only its gradients check runs, below
    plugin = rbm_plugin
    tiny_config = {"hidden": rbm.MIN_WIDTH, "chains": 4}  # wide enough for the kernels


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the kernels called (each ``gibbs`` or ``statistics`` call appends its name)."""
    calls: list[str] = []
    for name in ("gibbs", "statistics"):
        original = getattr(kernels, name)

        def counted(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(kernels, name, counted)
    return calls


@pytest.mark.parametrize("options", [{"method": "pcd", "k": 1}, {"method": "cd", "k": 2, "sparsity_target": 0.1}])
def test_kernel_gradients_equal_autograd_on_the_loss(kernel_calls: list[str], options: dict) -> None:
    """The contract's check (gradients, loss and buffers) with the hidden layer wide enough for the kernels."""
    contract = WideRBM()
    contract.tiny_train_options = options
    contract.test_set_gradients_equal_the_loss_gradients()
    assert kernel_calls == ["gibbs", "statistics"]  # the step above really ran on the kernels


def trained_rbm(chains: int) -> torch.nn.Module:
    """An RBM with digit-like, sparse hidden activity: a few hundred CD steps on the embedded digits."""
    config = rbm_plugin.Config(hidden=rbm.MIN_WIDTH, chains=chains)
    model = rbm.build(config)
    options = rbm_plugin.TrainOptions(method="cd")
    data = common.prepare(None, config, options).data
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    torch.manual_seed(0)
    for step in range(150):
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            rbm.gradients(model, data.batch(torch.Generator().manual_seed(step), chains), options)
        optimizer.step()
    return model


@pytest.mark.parametrize("options, binary", [({"method": "pcd", "k": 3}, False), ({"method": "cd", "k": 1}, False),
                                             ({"method": "pcd", "k": 1}, True)])
def test_kernels_draw_the_torch_steps_samples(monkeypatch: pytest.MonkeyPatch, options: dict, binary: bool) -> None:
    """From the same seed, the kernels and the torch step take the same random bits for the same units: the
    chains they leave are the same bits, and the gradients agree. The batch comes as intensities (the plugin's own
    batches: both steps binarize them from their first draws) or as 0/1 states drawn by the engine."""
    model = trained_rbm(chains=30)
    train = rbm_plugin.TrainOptions(**options)
    prepared = common.prepare(None, rbm_plugin.Config(hidden=rbm.MIN_WIDTH), train, binary=binary)
    batch = prepared.data.batch(torch.Generator().manual_seed(7), 30)
    assert ("binary" in batch) == binary
    by_kernels, by_torch = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(5)
    with torch.no_grad():
        error, _ = rbm.gradients(by_kernels, batch, train)
    monkeypatch.setattr(rbm, "runs_on_kernels", lambda model: False)
    torch.manual_seed(5)
    with torch.no_grad():
        expected, _ = rbm.gradients(by_torch, batch, train)
    assert float(error) == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(by_kernels.chains, by_torch.chains) and torch.equal(by_kernels.chain_hidden,
                                                                           by_torch.chain_hidden)
    for hand, reference in zip(by_kernels.parameters(), by_torch.parameters()):
        torch.testing.assert_close(hand.grad, reference.grad, rtol=1e-4, atol=1e-6)


def test_the_workspace_follows_the_batch_size() -> None:
    model = trained_rbm(chains=6)
    options = rbm_plugin.TrainOptions(method="cd")
    data = common.prepare(None, rbm_plugin.Config(hidden=rbm.MIN_WIDTH), options).data
    for rows in (6, 3, 6):
        with torch.no_grad():
            rbm.gradients(model, data.batch(torch.Generator().manual_seed(rows), rows), options)
        assert model.kernel_workspace.data_input.shape == (rows, rbm.MIN_WIDTH)
        assert model.weight.grad.shape == model.weight.shape and torch.isfinite(model.weight.grad).all()


def test_only_float32_cpu_models_wide_enough_run_on_the_kernels() -> None:
    wide = rbm.build(rbm_plugin.Config(hidden=rbm.MIN_WIDTH))
    assert rbm.runs_on_kernels(wide)
    assert not rbm.runs_on_kernels(rbm.build(rbm_plugin.Config(hidden=rbm.MIN_WIDTH - 1)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not rbm.runs_on_kernels(wide)  # --precision bf16 trains on torch's bf16 matmuls
    assert not rbm.runs_on_kernels(copy.deepcopy(wide).double())


def test_bit_blocks_count_each_sampling_of_the_step() -> None:
    # PCD-2: the monitored rows' hidden units, the chains' visible units, one more sweep, the kept hidden units.
    assert kernels.bit_blocks(True, 2, batch=10, chains=4, monitored=3, visible=7, hidden=5) == [15, 28, 20, 28, 20]
    # CD-1: the batch's hidden units, its reconstruction's visible units; no chains kept.
    assert kernels.bit_blocks(False, 1, batch=10, chains=10, monitored=10, visible=7, hidden=5) == [50, 70]
    # a batch of intensities: its binarization comes first
    assert kernels.bit_blocks(False, 1, 10, 10, 10, 7, 5, binarize=True) == [70, 50, 70]


def test_the_step_binarizes_intensities_as_bernoulli16_would() -> None:
    """PIXEL_THRESHOLDS[p] is the bound bernoulli16 compares a draw with for the probability p / 255, exactly."""
    probability = torch.arange(256, dtype=torch.uint8).float() / 255.0
    assert torch.equal(torch.from_numpy(kernels.PIXEL_THRESHOLDS), probability * 65536.0 - 32768.0)
    pixels = torch.tensor([[0, 255, 128, 1]], dtype=torch.uint8).repeat(20_000, 1)
    torch.manual_seed(0)
    states = rbm.data_states({"pixels": pixels}, torch.float32, common.RandomBits())
    frequency = states.mean(0)
    assert frequency[0] == 0 and frequency[1] == 1
    assert abs(float(frequency[2]) - 128 / 255) < 0.02 and abs(float(frequency[3]) - 1 / 255) < 0.002


def test_the_random_bits_are_splitmix64_seeded_by_torch() -> None:
    """One 64-bit seed from torch's generator per step, then splitmix64 of a counter: numba and numpy make the
    same words, handed out block after block."""
    assert int(common.splitmix64(0, 0, 1)[0]) == 0xE220A8397B1DCDAF  # SplitMix64's first output from state 0
    torch.manual_seed(1)
    whole = common.RandomBits(compiled=True).words(1000)
    torch.manual_seed(1)
    in_blocks = common.RandomBits(compiled=False)
    assert np.array_equal(np.concatenate([in_blocks.words(3), in_blocks.words(997)]), whole)
    torch.manual_seed(2)
    assert not np.array_equal(common.RandomBits(compiled=True).words(1000), whole)


def test_the_transpose_handles_rows_beyond_the_last_eight() -> None:
    weight = np.random.default_rng(0).standard_normal((13, 130)).astype(np.float32)
    transposed = np.zeros((130, 13), np.float32)
    kernels._transpose(weight, transposed)
    assert np.array_equal(transposed, weight.T)


def test_the_logit_table_splits_the_sixteen_bit_draws_like_the_probabilities() -> None:
    """x > LOGIT[k] exactly where sigmoid(x) > k / 65536: the sample common.bernoulli16 takes."""
    x = torch.linspace(-12, 12, 20001)
    k = torch.randint(0, 65536, x.shape, generator=torch.Generator().manual_seed(0))
    by_table = x > torch.from_numpy(kernels.LOGIT)[k]
    by_probability = torch.sigmoid(x.double()) > k.double() / 65536
    assert (by_table != by_probability).sum() <= 2  # float32 rounding at a threshold, at most
    assert kernels.LOGIT[0] == -float("inf") and kernels.LOGIT[32768] == 0


def test_compiled_kernels_are_cached_under_the_gencli_cache(tmp_path: Path) -> None:
    """Not in a __pycache__ beside the source (which may be read-only, and is not gencli's to fill)."""
    source = Path(kernels.__file__).parent
    before = set(source.glob("__pycache__/kernels.*.nbi"))
    script = ("import numpy as np; from gencli_boltzmann import kernels; "
              "print(kernels._ones(np.array([0, 1, 1], np.float32), np.zeros(3, np.int32)))")
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "2"
    assert list((tmp_path / "cache" / "gencli" / "numba").glob("boltzmann-*/**/kernels._ones-*.nbi"))
    assert set(source.glob("__pycache__/kernels.*.nbi")) == before

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go")
    environment["XDG_CACHE_HOME"] = str(blocked)  # cannot hold a folder: the kernels compile in the process
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "2"


def test_a_resumed_run_on_the_kernels_ends_where_an_unbroken_one_does(tmp_path: Path) -> None:
    """Each step's random bits come from a seed drawn from torch's generator, whose state the checkpoint keeps:
    3 steps, then --resume to 6, leave the same weights and chains as 6 steps in one go."""
    from safetensors.torch import load_file

    from gencli.options import TRAIN_FLAGS, dataclass_flags
    from gencli.runspec import resolve
    from gencli.train import Trainer

    flags = TRAIN_FLAGS + dataclass_flags(rbm_plugin.Config, "Config") + dataclass_flags(rbm_plugin.TrainOptions,
                                                                                         "TrainOptions")

    def train(folder: str, steps: int, resume: bool) -> None:
        typed = {"core": {"steps": steps, "decay_steps": 6, "save_every": 3, "batch_size": 20, "device": "cpu"},
                 "Config": {"hidden": rbm.MIN_WIDTH, "chains": 20}}
        spec = resolve(rbm_plugin, typed, flags, "test")
        trainer = Trainer(rbm_plugin, spec, tmp_path / folder, resume=resume, quiet=True)
        trainer.evaluate_at_end = False
        trainer.run()

    train("whole", 6, False)
    train("split", 3, False)
    train("split", 6, True)
    whole, split = (load_file(tmp_path / name / "model.safetensors") for name in ("whole", "split"))
    assert whole.keys() == split.keys() and all(torch.equal(whole[key], split[key]) for key in whole)
