"""The core's torch-free sample path: when it is taken, and the same weights checks as the torch path."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from gencli import sampling, weights
from gencli.errors import GencliError, UsageError
from gencli.plugin import NumpySampler


def fake_torch(monkeypatch, tmp_path: Path, version_py: str | None) -> None:
    """Make find_spec("torch") answer with a package whose version.py reads ``version_py`` (None: no torch)."""
    real = importlib.util.find_spec
    package = tmp_path / "torch"
    package.mkdir(exist_ok=True)
    if version_py is not None:
        (package / "version.py").write_text(version_py)

    def find_spec(name, *args, **kwargs):
        if name != "torch":
            return real(name, *args, **kwargs)
        return None if version_py is None else SimpleNamespace(submodule_search_locations=[str(package)])

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.parametrize("spec, expected", [("cpu", True), (" CPU ", True), ("cuda", False), ("cuda:1", False),
                                            ("tpu", False)])
def test_an_explicit_device_decides(spec: str, expected: bool) -> None:
    assert sampling.certainly_cpu(spec) is expected  # anything but cpu goes to torch, which explains errors


def test_auto_is_the_cpu_with_a_cpu_build_of_torch(monkeypatch, tmp_path) -> None:
    fake_torch(monkeypatch, tmp_path, "__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n")
    assert sampling.certainly_cpu("auto") and sampling.certainly_cpu(None)


def test_auto_with_a_cuda_build_depends_on_the_driver(monkeypatch, tmp_path) -> None:
    fake_torch(monkeypatch, tmp_path, "cuda: Optional[str] = '12.8'\nhip: Optional[str] = None\n")
    device = tmp_path / "nvidia0"
    monkeypatch.setattr(sampling, "GPU_DEVICE_FILES", (str(device),))
    assert sampling.certainly_cpu("auto")  # no driver: torch could not see a GPU either
    device.write_text("")
    assert not sampling.certainly_cpu("auto")  # maybe a GPU: let torch decide
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert sampling.certainly_cpu("auto")  # every GPU hidden


def test_auto_when_unsure_leaves_it_to_torch(monkeypatch, tmp_path) -> None:
    fake_torch(monkeypatch, tmp_path, "__version__ = 'odd'\n")  # no cuda/hip lines: an unknown build
    assert not sampling.certainly_cpu("auto")


class Offering:
    name = "offering"

    def __init__(self) -> None:
        self.asked = 0

    def numpy_sampler(self, config, options):
        self.asked += 1
        return NumpySampler({}, lambda weights, request: None)


def test_the_numpy_path_is_asked_for_only_on_the_cpu_and_unless_torch_is_forced(monkeypatch) -> None:
    plugin = Offering()
    monkeypatch.delenv("GENCLI_SAMPLE_TORCH", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # numpy_threads leaves a user's choice alone
    assert sampling.numpy_sampler_of(plugin, None, None, "cpu", None) is not None
    assert sampling.numpy_sampler_of(plugin, None, None, "cuda", None) is None
    monkeypatch.setenv("GENCLI_SAMPLE_TORCH", "1")
    assert sampling.numpy_sampler_of(plugin, None, None, "cpu", None) is None
    assert plugin.asked == 1
    assert sampling.numpy_sampler_of(SimpleNamespace(name="plain"), None, None, "cpu", None) is None


def test_threads_for_the_numpy_path(monkeypatch) -> None:
    for name in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    sampling.numpy_threads(None)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and "NUMBA_NUM_THREADS" not in os.environ
    sampling.numpy_threads(3)
    assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["NUMBA_NUM_THREADS"] == "3"
    with pytest.raises(UsageError, match="--threads 0"):
        sampling.numpy_threads(0)


def test_arrays_are_checked_like_a_built_model(tiny_run: Path) -> None:
    """The header against the plugin's tensor list: names and shapes refused with load_located's messages."""
    from gencli import registry

    plugin = registry.load("charrnn")
    located = weights.locate(plugin, str(tiny_run))
    tensors = {name: (entry["shape"], "float32") for name, entry in located.header.items()}
    loaded = weights.load_located_arrays(located, tensors)
    assert set(loaded.model) == set(tensors) and loaded.sha256 == weights.sha256_of(located.source.weights_file)
    assert not next(iter(loaded.model.values())).flags.writeable
    wrong = dict(tensors, **{"head.bias": ([1], "float32")})
    with pytest.raises(GencliError, match="head.bias has shape"):
        weights.load_located_arrays(located, wrong)
    with pytest.raises(GencliError, match="missing extra.weight"):
        weights.load_located_arrays(located, dict(tensors, **{"extra.weight": ([1], "float32")}))
