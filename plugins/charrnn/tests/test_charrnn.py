"""charrnn: the shared contract, plus what is special to a character model."""

from __future__ import annotations

import math

import pytest
import torch

from gencli.plugin import EvalRequest, SampleRequest
from gencli.testing import PluginContract
from gencli_charrnn import Config, EvalOptions, SampleOptions, plugin
from gencli_charrnn.model import CharLSTM, Codec

TINY = {"embedding_size": 8, "hidden_size": 16, "num_layers": 2, "dropout": 0.0}


class TestCharRNNContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_train_options = {"seq_length": 32}
    tiny_sample_options = {"length": 40}


def tiny_model(vocab: str = "abcdefgh \n") -> tuple[CharLSTM, Config]:
    torch.manual_seed(0)
    config = Config(vocab=vocab, **TINY)
    return CharLSTM(config).eval(), config


def test_incremental_steps_match_a_full_pass() -> None:
    """Sampling feeds one character at a time with the carried state: it must equal one pass over the text."""
    model, config = tiny_model()
    ids = Codec(config.vocab).encode("abc defgh\nab")[None]  # (1, T)
    with torch.no_grad():
        full, _ = model(ids)
        state, steps = None, []
        for t in range(ids.shape[1]):
            logits, state = model(ids[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_sample_continues_the_prime_and_has_the_requested_length() -> None:
    model, config = tiny_model()
    options = SampleOptions(prime="abc", length=25)
    with torch.inference_mode():
        text = "".join(plugin.sample(model, config, options, SampleRequest(1, 0, torch.device("cpu"))).chunks)
    assert text.startswith("abc") and len(text) == 3 + 25
    assert set(text) <= set(config.vocab)


def test_several_samples_are_separate_texts() -> None:
    model, config = tiny_model()
    options = SampleOptions(prime="ab", length=10)
    with torch.inference_mode():
        text = "".join(plugin.sample(model, config, options, SampleRequest(3, 0, torch.device("cpu"))).chunks)
    parts = text.split("\n\n")
    assert len(parts) >= 3 and all(p.startswith("ab") for p in parts[:1])


def test_unknown_prime_characters_are_refused_by_name() -> None:
    model, config = tiny_model()
    with pytest.raises(Exception, match="never saw: 'Z'"):
        plugin.sample(model, config, SampleOptions(prime="aZ"), SampleRequest(1, 0, torch.device("cpu")))


def test_temperature_near_zero_is_greedy() -> None:
    model, config = tiny_model()
    options = SampleOptions(prime="a", length=15, temperature=1e-4)
    runs = []
    for seed in (1, 2):
        with torch.inference_mode():
            runs.append("".join(plugin.sample(model, config, options,
                                              SampleRequest(1, seed, torch.device("cpu"))).chunks))
    assert runs[0] == runs[1]


def uniform_model_scores(tmp_path, text: str) -> dict[str, float]:
    """evaluate() on ``text`` (held-out tail included) by a model that finds 'abcd' equally likely."""
    (tmp_path / "t.txt").write_text(text)
    model, config = tiny_model(vocab="abcd")
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        return plugin.evaluate(model, config, EvalOptions(seq_length=16),
                               EvalRequest(str(tmp_path / "t.txt"), torch.device("cpu"), 0))


def test_uniform_model_scores_log2_vocab_bits(tmp_path) -> None:
    """A model that predicts every character equally likely must score exactly log2(V) bits per char."""
    metrics = uniform_model_scores(tmp_path, "abcd" * 400)
    assert metrics["bits_per_char"] == pytest.approx(math.log2(4), abs=1e-5)


def test_a_short_text_is_scored_on_its_few_held_out_characters(tmp_path) -> None:
    """100 characters hold out a tail of 5: fewer than the 16 evaluation streams (it divided by zero)."""
    metrics = uniform_model_scores(tmp_path, "abcd" * 25)
    assert metrics["bits_per_char"] == pytest.approx(2.0, abs=1e-5) and 0 < metrics["characters"] < 16
