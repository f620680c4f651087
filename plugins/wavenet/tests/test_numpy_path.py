"""wavenet's torch-free CPU path: the same samples as the torch path, no torch imported, and the compiled loop's
disk cache (hit, miss, unwritable, unreadable)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from gencli.plugin import SampleRequest
from gencli_wavenet import Config, SampleOptions, arch, fused, plugin
from gencli_wavenet.model import WaveNetModel
from gencli_wavenet.sampling import prime, silence_prefix
from wavenet_tiny import TINY, arrays_of, random_model

BUNDLE = Path(plugin.bundled_weights)


def test_tensor_specs_are_the_models_state_dict() -> None:
    for config in (Config(**TINY, num_speakers=3), Config(num_speakers=0), Config(stacks=1, num_speakers=2)):
        expected = {name: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
                    for name, t in WaveNetModel(config).state_dict().items()}
        assert arch.tensor_specs(config) == expected


def test_numpy_priming_from_silence_equals_torchs() -> None:
    model, config = random_model()
    prefix = silence_prefix(model, 2)
    with torch.inference_mode():
        slow = prime(model, prefix, torch.tensor([0, 2]))
    sampler = fused.FusedSampler(arrays_of(model), config, [0, 2])
    for fast, reference in zip(sampler._constant_state(prefix[:, 0]), slow):
        np.testing.assert_allclose(fast, reference.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("n", [1, 3])
def test_the_numpy_path_gives_the_torch_paths_clip(n: int) -> None:
    """Same weights, seed and options: the torch-free sampler and ``plugin.sample`` (fused) agree sample for
    sample, for one clip (serial kernel) and several (parallel kernel), each speaker in turn."""
    model, config = random_model()
    options = SampleOptions(seconds=0.006, temperature=0.9)
    with torch.inference_mode():
        by_torch = plugin.sample(model, config, options, SampleRequest(n, 5, torch.device("cpu")))
    offered = plugin.numpy_sampler(config, options)
    by_numpy = offered.sample(arrays_of(model), SampleRequest(n, 5, "cpu"))
    assert by_numpy.rate == by_torch.rate and by_numpy.samples.shape == (n, 96)
    assert np.array_equal(by_numpy.samples, by_torch.samples)


def test_the_torch_samplers_are_left_to_torch() -> None:
    for sampler in ("cached", "naive", "graph"):
        assert plugin.numpy_sampler(Config(**TINY), SampleOptions(sampler=sampler)) is None


# ---- the command, in a subprocess --------------------------------------------------------------------------------


def gencli(*args: str, cache: Path, importtime: bool = False, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "NUMBA_"))}
    env.update({"XDG_CACHE_HOME": str(cache), "NO_COLOR": "1", **extra})
    flags = ["-X", "importtime"] if importtime else []
    process = subprocess.run([sys.executable, *flags, "-m", "gencli", *args], env=env, capture_output=True,
                             timeout=300)
    process.stderr = process.stderr.decode("utf-8", "replace")
    return process


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("gencli:")]


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_sample_wavenet_imports_no_torch_and_compiles_once(tmp_path: Path) -> None:
    """The command as users type it: first run compiles (and says so), the second loads the cache silently;
    neither imports torch; the WAV and its provenance are what the torch path writes."""
    cache = tmp_path / "cache"
    first = gencli("sample", "wavenet", "--seconds", "0.02", "-o", str(tmp_path / "a.wav"), "--seed", "4",
                   cache=cache, importtime=True)
    assert first.returncode == 0, first.stderr[-3000:]
    modules = imported(first.stderr)
    assert "gencli_wavenet.fused" in modules  # the measurement works
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}
    assert [line for line in notes(first.stderr) if "compiling" in line] != []
    second = gencli("sample", "wavenet", "--seconds", "0.02", "-o", str(tmp_path / "b.wav"), "--seed", "4",
                    cache=cache)
    assert second.returncode == 0 and notes(second.stderr) == [], second.stderr
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()

    by_torch = gencli("sample", "wavenet", "--seconds", "0.02", "-o", "-", "--seed", "4", cache=cache,
                      GENCLI_SAMPLE_TORCH="1")
    assert by_torch.returncode == 0, by_torch.stderr[-3000:]
    numpy_clip, rate = soundfile.read(tmp_path / "a.wav", dtype="int16")
    torch_clip, _ = soundfile.read(io.BytesIO(by_torch.stdout), dtype="int16")
    assert rate == 16000 and np.array_equal(numpy_clip, torch_clip)
    info = soundfile.SoundFile(tmp_path / "a.wav").extra_info
    assert hashlib.sha256((BUNDLE / "model.safetensors").read_bytes()).hexdigest() in info


def test_a_corrupt_bundle_is_refused_on_the_numpy_path_too(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((BUNDLE / "config.json").read_text())
    data = bytearray((BUNDLE / "model.safetensors").read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    start = 8 + header_len + header["out2.bias"]["data_offsets"][0]
    data[start:start + 4] = np.array([np.nan], dtype=np.float32).tobytes()
    (run / "model.safetensors").write_bytes(bytes(data))
    process = gencli("sample", "wavenet", "--weights", str(run), "--seconds", "0.01", "-o", str(tmp_path / "x.wav"),
                     cache=tmp_path / "cache", importtime=True)
    assert process.returncode == 1
    lines = [line for line in process.stderr.splitlines() if not line.startswith("import time:")]
    assert len(lines) == 1 and "out2.bias contains NaN or Inf" in lines[0], lines
    assert "torch" not in imported(process.stderr)


@pytest.mark.parametrize("flags, message", [(["--seconds", "0"], "Invalid value for '--seconds'"),
                                            (["--speaker", "zed"], "unknown speaker")])
def test_a_bad_flag_is_refused_before_numba_loads(tmp_path: Path, flags: list[str], message: str) -> None:
    process = gencli("sample", "wavenet", *flags, "-o", str(tmp_path / "x.wav"), cache=tmp_path, importtime=True)
    lines = [line for line in process.stderr.splitlines() if not line.startswith("import time:")]
    assert process.returncode == 2 and len(lines) == 1 and message in lines[0], lines
    assert not {"numba", "torch"} & imported(process.stderr)


# ---- the cache, in this process ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_kernels(monkeypatch, tmp_path):
    """fused's kernels forgotten, and its cache under tmp_path (the fixture value) unless a test moves it."""
    import numba

    monkeypatch.setattr(fused, "_kernels", {})
    monkeypatch.setattr(fused, "_cache", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Moving the cache reloads numba's config, which refuses a thread count other than that of a pool already
    # running: an earlier test in this worker may have started one under another NUMBA_NUM_THREADS.
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(numba.config.NUMBA_NUM_THREADS))
    return tmp_path / "cache"


def short_clip(config: Config, weights: dict[str, np.ndarray]) -> np.ndarray:
    sampler = fused.FusedSampler(weights, config, [0])
    return sampler.generate(arch.silence_prefix(config, 1), arch.uniforms(3, 1, 40), 40, 1.0)


def test_an_unwritable_cache_compiles_with_one_note(fresh_kernels, monkeypatch, tmp_path, capsys) -> None:
    model, config = random_model()
    expected = short_clip(config, arrays_of(model))  # through the cache
    capsys.readouterr()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder's parent should be")  # unwritable even for root
    monkeypatch.setattr(fused, "_kernels", {})
    monkeypatch.setattr(fused, "_cache", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    assert np.array_equal(short_clip(config, arrays_of(model)), expected)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "cannot keep the compiled WaveNet sampler" in lines[0], lines
    assert short_clip(config, arrays_of(model)).shape == (1, 40) and capsys.readouterr().err == ""  # said once


def test_an_unreadable_cache_is_rebuilt_with_one_note(fresh_kernels, monkeypatch, capsys) -> None:
    model, config = random_model()
    expected = short_clip(config, arrays_of(model))
    assert "compiling" in capsys.readouterr().err
    index_files = list(fresh_kernels.rglob("*.nbi"))
    assert index_files  # numba wrote its index where we told it to
    for path in index_files:
        path.write_bytes(path.read_bytes()[:20] + b"\x00garbage")
    monkeypatch.setattr(fused, "_kernels", {})
    monkeypatch.setattr(fused, "_cache", {})
    assert np.array_equal(short_clip(config, arrays_of(model)), expected)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "is unusable" in lines[0], lines
    assert not list(fresh_kernels.rglob("*.nbi"))  # removed, so the next command rebuilds it


def test_the_cache_folder_is_keyed_by_toolchain_source_and_cpu(monkeypatch) -> None:
    key = fused.cache_key()
    assert key == fused.cache_key()
    monkeypatch.setenv("NUMBA_CPU_NAME", "some-other-cpu")
    assert fused.cache_key() != key
    monkeypatch.delenv("NUMBA_CPU_NAME")
    monkeypatch.setattr(fused.numba, "__version__", "0.0.1")
    assert fused.cache_key() != key
