"""charrnn's torch-free sampler: the same logits and sampling probabilities as the torch model on the same
weights, the same output layout, and no torch imported by `gencli sample charrnn`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gencli.plugin import SampleRequest
from gencli_charrnn import Config, SampleOptions, plugin
from gencli_charrnn.model import CharLSTM, Codec, _draw
from gencli_charrnn.numpy_lstm import NumpyLSTM, draw, probabilities, tensor_specs

TINY = {"embedding_size": 8, "hidden_size": 16, "num_layers": 2, "dropout": 0.0}


def tiny_model(num_layers: int = 2) -> tuple[CharLSTM, Config]:
    torch.manual_seed(0)
    config = Config(vocab="abcdefgh \n", **{**TINY, "num_layers": num_layers})
    model = CharLSTM(config).eval()
    with torch.no_grad():  # sharper than the default init, so the logits differ clearly between characters
        for p in model.parameters():
            p.mul_(3.0)
    return model, config


def arrays_of(model: CharLSTM) -> dict[str, np.ndarray]:
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}


@pytest.mark.parametrize("vocab, layers", [("abc", 1), ("abcdefgh \n", 3)])
def test_tensor_specs_are_the_models_state_dict(vocab: str, layers: int) -> None:
    config = Config(vocab=vocab, **{**TINY, "num_layers": layers})
    expected = {name: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
                for name, t in CharLSTM(config).state_dict().items()}
    assert tensor_specs(config) == expected


@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_cell_steps_give_the_torch_models_logits(layers: int) -> None:
    """Three streams fed different characters step by step: every step's logits equal the torch model's."""
    model, config = tiny_model(layers)
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, len(config.vocab), (3, 40)))
    with torch.no_grad():
        expected, _ = model(ids)  # (3, 40, V)
    lstm = NumpyLSTM(arrays_of(model), layers)
    state = lstm.start(3)
    for t in range(ids.shape[1]):
        logits = lstm.step(ids[:, t].numpy(), state)
        np.testing.assert_allclose(logits, expected[:, t].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (0.5, 0), (1.3, 3), (0.8, 1)])
def test_sampling_probabilities_are_the_torch_paths(temperature: float, top_k: int) -> None:
    logits = np.random.default_rng(1).normal(0, 3, (4, 10)).astype(np.float32)
    logits[0, [2, 5, 7]] = logits[0].max() + 1  # ties at the top: top-k keeps every tied logit, as torch does
    options = SampleOptions(temperature=temperature, top_k=top_k)
    scaled = torch.from_numpy(logits) / temperature
    if top_k:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    np.testing.assert_allclose(probabilities(logits, options.temperature, options.top_k),
                               F.softmax(scaled, dim=-1).numpy(), rtol=0, atol=1e-6)


def test_draws_follow_the_probabilities_like_torchs_multinomial() -> None:
    p = np.array([[0.5, 0.0, 0.2, 0.3], [0.05, 0.05, 0.0, 0.9]])
    rng = np.random.Generator(np.random.PCG64(0))
    counts = np.zeros_like(p)
    for _ in range(20000):
        counts[[0, 1], draw(p, rng)] += 1
    generator = torch.Generator().manual_seed(0)
    by_torch = np.zeros_like(p)
    options = SampleOptions(temperature=1.0)
    logits = torch.log(torch.from_numpy(p).float())
    for _ in range(20000):
        by_torch[[0, 1], _draw(logits, options, generator).numpy()] += 1
    assert counts[0, 1] == 0 and counts[1, 2] == 0  # never a zero-probability character
    np.testing.assert_allclose(counts / 20000, p, atol=0.015)  # 5 standard deviations at most
    np.testing.assert_allclose(by_torch / 20000, p, atol=0.015)


@pytest.mark.parametrize("n", [1, 3])
def test_greedy_text_is_the_same_on_both_paths(n: int) -> None:
    """With temperature near 0 both paths pick the likeliest character, so the whole output (prime, streams,
    separators) must be identical."""
    model, config = tiny_model()
    options = SampleOptions(prime="abc", length=30, temperature=1e-4)
    with torch.inference_mode():
        by_torch = "".join(plugin.sample(model, config, options, SampleRequest(n, 0, torch.device("cpu"))).chunks)
    offered = plugin.numpy_sampler(config, options)
    by_numpy = "".join(offered.sample(arrays_of(model), SampleRequest(n, 0, "cpu")).chunks)
    assert by_numpy == by_torch and by_numpy.startswith("abc")


def test_numpy_path_refuses_what_the_torch_path_refuses() -> None:
    model, config = tiny_model()
    for options, message in ((SampleOptions(prime="aZ"), "never saw: 'Z'"), (SampleOptions(length=-1), "--length"),
                             (SampleOptions(temperature=0), "--temperature")):
        with pytest.raises(Exception, match=message):
            plugin.numpy_sampler(config, options).sample(arrays_of(model), SampleRequest(1, 0, "cpu"))


def gencli(*args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENCLI_")}
    env.update({"NO_COLOR": "1", **extra})
    process = subprocess.run([sys.executable, "-X", "importtime", "-m", "gencli", *args], env=env,
                             capture_output=True, text=True, timeout=300)
    return process


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_sample_charrnn_in_a_pipe_imports_no_torch_and_records_the_same_provenance(tmp_path: Path) -> None:
    fast = gencli("sample", "charrnn", "--length", "50", "--seed", "3", "-o", str(tmp_path / "a.txt"))
    assert fast.returncode == 0, fast.stderr[-3000:]
    modules = imported(fast.stderr)
    assert "gencli_charrnn.numpy_lstm" in modules and "torch" not in modules
    slow = gencli("sample", "charrnn", "--length", "50", "--seed", "3", "-o", str(tmp_path / "b.txt"),
                  GENCLI_SAMPLE_TORCH="1")
    assert slow.returncode == 0 and "torch" in imported(slow.stderr), slow.stderr[-3000:]
    for name in ("a.txt", "b.txt"):  # 50 characters, and the newline a text file ends with if they did not
        assert len((tmp_path / name).read_text().removesuffix("\n")) in (49, 50)
    provenance = [json.loads((tmp_path / f"{name}.txt.json").read_text()) for name in "ab"]
    assert provenance[0] == provenance[1] and provenance[0]["weights"] == "bundled:charrnn"
