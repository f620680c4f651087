"""wavenet: the shared contract, plus the samplers' agreement, the data path and mu-law."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from gencli.errors import UsageError
from gencli.plugin import SampleRequest
from gencli.testing import PluginContract
from gencli_wavenet import Config, SampleOptions, TrainOptions, plugin
from gencli_wavenet import audio
from gencli_wavenet.model import WaveNetModel, prepare
from gencli_wavenet.sampling import CachedStepper, NaiveStepper, draw, generate, prime
from wavenet_tiny import TINY, arrays_of, random_model



def write_corpus(root, rate=16000, seconds=1.0) -> None:
    """Two speakers of short formant babble, as WAV files in sub-folders."""
    for index, name in enumerate(("alice", "bob")):
        (root / name).mkdir(parents=True, exist_ok=True)
        clip = audio.synthesize_babble(np.random.default_rng(index), rate, seconds, 120.0 + 80 * index, 1.0)
        soundfile.write(str(root / name / "a.wav"), clip, rate, subtype="PCM_16")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root)
    return root


class TestWaveNetContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_train_options = {"window": 256}
    tiny_sample_options = {"seconds": 0.01}
    tiny_eval_options = {"max_seconds": 0.5, "rtf_seconds": 0.01}

    @pytest.fixture(autouse=True)
    def _data(self, corpus_dir, monkeypatch):
        monkeypatch.setattr(type(self), "data", str(corpus_dir))


def test_default_config_meets_the_paper_scale() -> None:
    model = WaveNetModel(Config(num_speakers=1))
    assert len(model.layers) >= 20 and model.receptive_field >= 1000


def test_cached_logits_equal_naive_logits() -> None:
    model, _ = random_model()
    prefix = np.random.default_rng(0).integers(0, 256, (3, model.receptive_field + 40))
    speaker = torch.tensor([0, 1, 2])
    rng = np.random.default_rng(1)
    with torch.inference_mode():
        cached, naive = CachedStepper(model, prefix, speaker), NaiveStepper(model, prefix, speaker)
        for _ in range(60):  # more than the receptive field (58), so every queue wraps around
            torch.testing.assert_close(cached.logits, naive.logits, rtol=0, atol=1e-4)
            chosen = torch.from_numpy(rng.integers(0, 256, 3))
            cached.push(chosen)
            naive.push(chosen)


def test_fused_matches_cached_logits_and_samples() -> None:
    from gencli_wavenet.fused import FusedSampler

    model, config = random_model()
    prefix = np.random.default_rng(2).integers(0, 256, (2, model.receptive_field + 10))
    u = np.random.default_rng(3).random((80, 2))
    with torch.inference_mode():
        kept = [k.numpy() for k in prime(model, prefix, torch.tensor([1, 2]))]
    fused = FusedSampler(arrays_of(model), config, [1, 2])
    fused.prime(prefix, kept)
    samples, logits = fused.run_block(u, 0.9, keep_logits=True)
    with torch.inference_mode():
        cached = CachedStepper(model, prefix, torch.tensor([1, 2]))
        for t in range(len(u)):
            np.testing.assert_allclose(logits[t], cached.logits.numpy(), rtol=0, atol=1e-4)
            chosen = draw(cached.logits, 0.9, torch.from_numpy(u[t]))
            assert chosen.tolist() == samples[:, t].tolist(), f"step {t}"
            cached.push(chosen)


def test_all_samplers_give_the_same_clip() -> None:
    model, config = random_model()
    runs = [generate(model, config, s, n=2, steps=30, speakers=[0, 1], temperature=1.0, seed=7)
            for s in ("naive", "cached", "fused", "graph")]
    for other in runs[1:]:
        assert np.array_equal(runs[0], other)


def test_graph_sampler_steps_match_the_cached_sampler_across_blocks_and_queue_wraps() -> None:
    """The GPU sampler's device-side step (ring-buffer slots from a step counter on the device, the last samples
    carried from block to block), run eagerly here: per step the cached sampler's logits and samples, for 75
    steps from a non-silent prefix, past the 16-sample receptive field so every queue wraps."""
    from gencli_wavenet.graphed import StaticStepper

    model, _ = random_model()
    prefix = np.random.default_rng(4).integers(0, 256, (3, model.receptive_field + 5))
    speaker = torch.tensor([2, 0, 1])
    u = np.random.default_rng(5).random((75, 3))
    with torch.inference_mode():
        stepper = StaticStepper(model, prefix, speaker, 0.8, block=25, keep_logits=True)
        cached = CachedStepper(model, prefix, speaker)
        for start in range(0, 75, 25):
            stepper.uniform.copy_(torch.from_numpy(u[start:start + 25]))
            stepper.run_block()
            for k in range(25):
                torch.testing.assert_close(stepper.logits[k], cached.logits, rtol=0, atol=1e-4)
                chosen = draw(cached.logits, 0.8, torch.from_numpy(u[start + k]))
                assert stepper.samples[k].tolist() == chosen.tolist(), f"step {start + k}"
                cached.push(chosen)


def _graph_clip(capture_block, capsys) -> tuple[np.ndarray, np.ndarray, str]:
    """(the graph path's clip with ``capture_block`` standing in for the CUDA capture, the cached clip, stderr)."""
    model, config = random_model()
    common = {"n": 2, "steps": 150, "speakers": [1, 0], "temperature": 0.9, "seed": 3}
    clip = generate(model, config, "graph", capture_block=capture_block, **common)
    warned = capsys.readouterr().err
    return clip, generate(model, config, "cached", **common), warned


def test_graph_self_check_passes_quietly_when_the_block_agrees(capsys) -> None:
    clip, cached, warned = _graph_clip(lambda stepper: stepper.run_block, capsys)
    assert np.array_equal(clip, cached) and warned == ""


def test_graph_that_fails_to_capture_falls_back_to_the_cached_sampler_with_one_warning(capsys) -> None:
    def failing(stepper):
        raise RuntimeError("operation not permitted when stream is capturing")

    clip, cached, warned = _graph_clip(failing, capsys)
    assert np.array_equal(clip, cached)
    assert warned.count("gencli: warning:") == 1 and "could not be captured" in warned, warned


def test_graph_that_disagrees_falls_back_to_the_cached_sampler_with_one_warning(capsys) -> None:
    def wrong(stepper):  # a replay whose arithmetic is off: logits shifted by 0.01 for the first class
        def run() -> None:
            stepper.run_block()
            stepper.logits[:, :, 0] += 0.01

        return run

    clip, cached, warned = _graph_clip(wrong, capsys)
    assert np.array_equal(clip, cached)
    assert warned.count("gencli: warning:") == 1 and "logits differ by 0.01 at step 1" in warned, warned


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the graph capture itself)")
def test_graph_sampler_on_a_gpu_replays_the_cached_samplers_clip() -> None:
    """The CUDA-graph replay (capture, state restored after the warm-up, blocks replayed) against the cached
    sampler on the same GPU; a clip of 150 samples is two blocks of 64 and a partial one."""
    model, config = random_model()
    model = model.cuda()
    prefix = np.random.default_rng(4).integers(0, 256, (3, model.receptive_field + 5))
    common = {"n": 3, "steps": 150, "speakers": [2, 0, 1], "temperature": 0.8, "seed": 9, "prefix": prefix}
    assert np.array_equal(generate(model, config, "graph", **common), generate(model, config, "cached", **common))


def test_sample_length_and_range() -> None:
    model, config = random_model()
    with torch.inference_mode():
        out = plugin.sample(model, config, SampleOptions(seconds=0.005), SampleRequest(3, 0, torch.device("cpu")))
    assert out.samples.shape == (3, 80) and out.rate == 16000
    assert np.all(np.abs(out.samples) <= 1.0)


@pytest.mark.parametrize("seconds", [0.0, -1.0, 600.5])
def test_bad_seconds_is_refused_with_one_line(seconds) -> None:
    model, config = random_model()
    with pytest.raises(UsageError) as error:
        plugin.sample(model, config, SampleOptions(seconds=seconds), SampleRequest(1, 0, torch.device("cpu")))
    assert "--seconds" in str(error.value) and "\n" not in str(error.value)


def test_unknown_speaker_is_refused() -> None:
    model, config = random_model()
    with pytest.raises(UsageError, match="unknown speaker"):
        plugin.sample(model, config, SampleOptions(seconds=0.01, speaker="zed"), SampleRequest(1, 0, torch.device("cpu")))


def test_corrupt_and_empty_files_are_skipped_and_counted(tmp_path, capsys) -> None:
    write_corpus(tmp_path)
    (tmp_path / "alice" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    soundfile.write(str(tmp_path / "bob" / "empty.wav"), np.zeros(0, np.float32), 16000)
    prepared = prepare(str(tmp_path), Config(**TINY), TrainOptions(window=128))
    err = capsys.readouterr().err
    assert err.count("skipped") == 1 and "skipped 2 unreadable or empty" in err
    assert prepared.config.speakers == ["alice", "bob"] and prepared.config.num_speakers == 2


def test_other_rates_and_stereo_are_resampled_to_the_model_rate(tmp_path, capsys) -> None:
    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1) * 0.5
    (tmp_path / "s").mkdir()
    soundfile.write(str(tmp_path / "s" / "tone.wav"), stereo, rate, subtype="PCM_16")
    corpus = audio.load_folder(tmp_path, 16000)
    assert "44,100 Hz to 16,000 Hz" in capsys.readouterr().err
    (clip,) = corpus.clips
    assert len(clip) == 24000  # 1.5 s at 16 kHz
    expected = 0.375 * np.sin(2 * np.pi * 440 * np.arange(24000) / 16000)  # mono mix of 0.5 and 0.25
    assert np.max(np.abs(clip[200:-200] - expected[200:-200])) < 2e-3


def test_a_tone_above_the_new_nyquist_frequency_does_not_alias_into_the_training_audio() -> None:
    """10 kHz at 44.1 kHz, resampled to 16 kHz (Nyquist 8 kHz), must vanish: over 100 dB down (soxr HQ gives
    about 140; the windowed-sinc resampler it replaced let 63 dB through, as a 6 kHz alias)."""
    rate = 44100
    tone = np.sin(2 * np.pi * 10000 * np.arange(2 * rate) / rate).astype(np.float32)
    out = audio.resample(tone, rate, 16000)
    middle = out[1600:-1600]  # away from the start and end transients
    leftover = np.mean(middle.astype(np.float64) ** 2) / np.mean(tone.astype(np.float64) ** 2)
    assert 10 * np.log10(max(leftover, 1e-30)) < -100


def test_mu_law_round_trip() -> None:
    classes = np.arange(256)
    assert np.array_equal(audio.mu_law_encode(audio.mu_law_decode(classes)), classes)
    x = np.linspace(-1, 1, 10001)
    decoded = audio.mu_law_decode(audio.mu_law_encode(x))
    assert np.max(np.abs(decoded - x)) < 0.032  # the widest mu-law step, near full scale
    assert np.max(np.abs(decoded - x)[np.abs(x) < 0.01]) < 1e-3  # fine steps near zero
    assert audio.mu_law_encode(np.zeros(1))[0] == 128


def test_batches_are_windows_of_receptive_field_plus_window(corpus_dir) -> None:
    prepared = prepare(str(corpus_dir), Config(**TINY), TrainOptions(window=100))
    x, speaker = prepared.data.batch(torch.Generator().manual_seed(0), 5)
    model = WaveNetModel(prepared.config)
    assert x.shape == (5, model.receptive_field + 100) and speaker.shape == (5,)
    assert x.min() >= 0 and x.max() <= 255 and set(speaker.tolist()) <= {0, 1}


def test_silence_priming_equals_a_full_forward() -> None:
    from gencli_wavenet.sampling import prime, silence_prefix

    model, _ = random_model()
    prefix = silence_prefix(model, 2)
    speaker = torch.tensor([0, 2])
    with torch.inference_mode():
        full = model.run(torch.from_numpy(prefix[:, :-1]), speaker, keep_layer_inputs=1)[1]
    for fast, slow in zip(prime(model, prefix, speaker), full):
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
