"""``PluginContract``: the conformance tests every plugin's test suite inherits.

Usage in a plugin's tests::

    from gencli.testing import PluginContract
    from my_plugin import plugin

    class TestMyPluginContract(PluginContract):
        plugin = plugin
        tiny_config = {"hidden_size": 8}       # Config overrides that make a model build in milliseconds
        tiny_train_options = {}                # TrainOptions overrides
        tiny_sample_options = {"length": 20}   # SampleOptions overrides
        tiny_eval_options = {}
        data = None                            # --data for prepare/evaluate (None: the plugin's default)

The checks cover the contract's promises: a torch-free declaration, documented flags, a model that builds on
the meta device, deterministic batches, a loss that training lowers, seeded sampling of the right type,
finite evaluation figures, a save/load round trip through the core's weights module, and for a plugin with a
torch-free sampler, its tensor list against the model.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any, ClassVar

from gencli.plugin import Audio, Clips, EvalRequest, Images, SampleRequest, Strokes, Text, Trajectories, option_fields
from gencli.plugin import InputImage  # what SampleRequest.input carries

OUTPUT_TYPES = {"image": Images, "text": Text, "strokes": Strokes, "audio": Audio, "video": Clips,
                "trajectories": Trajectories}


def payload(output: Any) -> bytes:
    """The content of an output as bytes, for exact comparisons."""
    import numpy as np

    if isinstance(output, Text):
        return "".join(output.chunks).encode()
    if isinstance(output, Images):
        return np.ascontiguousarray(output.pixels).tobytes()
    if isinstance(output, Audio):
        return np.ascontiguousarray(output.samples).tobytes()
    if isinstance(output, Clips):
        return np.ascontiguousarray(output.frames).tobytes()
    if isinstance(output, Trajectories):
        return np.ascontiguousarray(output.positions).tobytes()
    return b"".join(np.ascontiguousarray(line).tobytes() for line in output.lines)


def _flat(batch: Any) -> Any:
    """Every tensor of a batch (a tensor, a tuple/list or a dict of tensors) in one float vector."""
    import torch

    if isinstance(batch, dict):
        batch = [batch[key] for key in sorted(batch)]
    parts = batch if isinstance(batch, (tuple, list)) else [batch]
    return torch.cat([t.float().flatten() for t in parts])


class PluginContract:
    plugin: ClassVar[Any]
    tiny_config: ClassVar[dict[str, Any]] = {}
    tiny_train_options: ClassVar[dict[str, Any]] = {}
    tiny_sample_options: ClassVar[dict[str, Any]] = {}
    tiny_eval_options: ClassVar[dict[str, Any]] = {}
    data: ClassVar[str | None] = None
    batch_size: ClassVar[int] = 4
    train_steps: ClassVar[int] = 30  # steps on one batch that must lower the loss
    # A plugin that declares image_input samples from this many pixels a side of seeded noise (its
    # ``tiny_input``); one whose output is a function of its input alone (super-resolution) sets
    # seed_changes_output False, and the sampling test then checks only that a seed repeats.
    tiny_input_size: ClassVar[tuple[int, int]] = (12, 16)
    seed_changes_output: ClassVar[bool] = True

    # -- helpers --

    def _prepared(self) -> Any:
        config = self.plugin.Config(**self.tiny_config)
        options = self.plugin.TrainOptions(**self.tiny_train_options)
        return self.plugin.prepare(self.data, config, options), options

    def _model(self) -> tuple[Any, Any, Any]:
        import torch

        torch.manual_seed(0)
        prepared, options = self._prepared()
        return self.plugin.build(prepared.config), prepared, options

    def tiny_input(self) -> InputImage | None:
        """The --input image the contract tests sample from (None for a plugin without image_input)."""
        import numpy as np

        declared = getattr(self.plugin, "image_input", None)
        if declared is None:
            return None
        channels = declared.channels or 3
        pixels = np.random.default_rng(0).integers(0, 256, (*self.tiny_input_size, channels), dtype=np.uint8)
        return InputImage(pixels, None, "tiny.png", "tiny", "0" * 64)

    def _sample(self, model: Any, config: Any, seed: int, n: int = 1) -> Any:
        import torch

        from gencli.device import seed_everything

        seed_everything(seed)
        options = self.plugin.SampleOptions(**self.tiny_sample_options)
        model.eval()
        request = SampleRequest(n, seed, torch.device("cpu"), input=self.tiny_input())
        with torch.inference_mode():
            output = self.plugin.sample(model, config, options, request)
            if isinstance(output, Text):
                output = Text(["".join(output.chunks)])
        return output

    # -- the contract --

    def test_declaration_satisfies_contract(self) -> None:
        from gencli.registry import check_plugin

        check_plugin(self.plugin)

    def test_declaration_imports_without_torch(self) -> None:
        module = type(self.plugin).__module__
        code = f"import sys, {module}; assert 'torch' not in sys.modules, 'declaration imported torch'"
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

    def test_every_flag_has_help(self) -> None:
        for cls in (self.plugin.Config, self.plugin.TrainOptions, self.plugin.SampleOptions, self.plugin.EvalOptions):
            for field in option_fields(cls):
                assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"

    def test_presets_name_real_fields(self) -> None:
        from gencli.runspec import ENGINE_FIELDS

        config_fields = {f.name for f in dataclasses.fields(self.plugin.Config)}
        for name, preset in self.plugin.presets.items():
            assert set(preset.config) <= config_fields, f"preset {name}: unknown config keys"
            assert set(preset.train) <= ENGINE_FIELDS, f"preset {name}: unknown training keys"
            eval_fields = {f.name for f in dataclasses.fields(self.plugin.EvalOptions)}
            assert set(preset.evaluate) <= eval_fields, f"preset {name}: unknown evaluation keys"

    def test_builds_on_meta_device(self) -> None:
        import torch

        prepared, _ = self._prepared()
        with torch.device("meta"):
            model = self.plugin.build(prepared.config)
        assert all(t.is_meta for t in model.state_dict().values())

    def test_batches_depend_only_on_the_generator(self) -> None:
        import torch

        prepared, _ = self._prepared()
        first = prepared.data.batch(torch.Generator().manual_seed(5), self.batch_size)
        again = prepared.data.batch(torch.Generator().manual_seed(5), self.batch_size)
        other = prepared.data.batch(torch.Generator().manual_seed(6), self.batch_size)
        assert torch.equal(_flat(first), _flat(again))
        assert not torch.equal(_flat(first), _flat(other))

    def _train_on_one_batch(self, model: Any, prepared: Any, options: Any, parameters: Any,
                            metric: str | None = None, batch_size: int | None = None) -> list[float]:
        """Adam on ``parameters`` for ``train_steps`` steps of one fixed batch; the loss (or ``metric``) per step.

        A plugin whose loss is not something training lowers (a GAN's game value) overrides
        ``test_training_lowers_the_loss`` with this, e.g. training one player and watching its own metric.
        """
        import torch

        batch = prepared.data.batch(torch.Generator().manual_seed(0), batch_size or self.batch_size)
        optimizer = torch.optim.Adam(parameters, lr=1e-2)
        model.train()
        losses = []
        for _ in range(self.train_steps):
            loss, metrics = self.plugin.loss(model, batch, options)
            assert loss.dim() == 0 and torch.isfinite(loss)
            assert all(isinstance(v, float) for v in metrics.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(metrics[metric] if metric else float(loss.detach()))
        return losses

    def test_training_lowers_the_loss(self) -> None:
        model, prepared, options = self._model()
        losses = self._train_on_one_batch(model, prepared, options, model.parameters())
        assert losses[-1] < losses[0] * 0.9, f"loss went {losses[0]:.4f} -> {losses[-1]:.4f}"

    def test_set_gradients_equal_the_loss_gradients(self) -> None:
        """A plugin's hand-written ``gradients`` (when it has one) must be autograd's on its ``loss``: the same
        random numbers (torch's global generator reseeded), the same state changes, the same gradients."""
        import copy

        import pytest
        import torch

        if getattr(self.plugin, "gradients", None) is None:
            pytest.skip("the plugin trains through autograd on its loss only")
        model, prepared, options = self._model()
        batch = prepared.data.batch(torch.Generator().manual_seed(0), self.batch_size)
        model.train()
        by_hand, by_autograd = copy.deepcopy(model), copy.deepcopy(model)
        torch.manual_seed(3)
        with torch.no_grad():
            reported, metrics = self.plugin.gradients(by_hand, batch, options)
        torch.manual_seed(3)
        loss, expected_metrics = self.plugin.loss(by_autograd, batch, options)
        loss.backward()
        assert float(reported) == pytest.approx(float(loss.detach()), rel=1e-5)
        assert metrics == pytest.approx(expected_metrics, rel=1e-5)
        for (name, hand), autograd in zip(by_hand.named_parameters(), by_autograd.parameters()):
            if hand.requires_grad:
                assert hand.grad is not None, f"gradients() left {name}.grad unset"
                torch.testing.assert_close(hand.grad, autograd.grad, rtol=1e-4, atol=1e-6, msg=name)
        for (name, hand), autograd in zip(by_hand.named_buffers(), by_autograd.buffers()):
            assert torch.equal(hand, autograd), f"buffer {name} differs"

    def test_sampling_is_seeded_and_typed(self) -> None:
        model, prepared, _ = self._model()
        first = self._sample(model, prepared.config, seed=1)
        assert isinstance(first, OUTPUT_TYPES[self.plugin.modality])
        assert payload(first) == payload(self._sample(model, prepared.config, seed=1))
        if self.seed_changes_output:
            assert payload(first) != payload(self._sample(model, prepared.config, seed=2))

    def test_evaluate_gives_finite_figures(self) -> None:
        import math

        import torch

        model, prepared, _ = self._model()
        model.eval()
        options = self.plugin.EvalOptions(**self.tiny_eval_options)
        with torch.inference_mode():
            metrics = self.plugin.evaluate(model, prepared.config, options,
                                           EvalRequest(self.data, torch.device("cpu"), 0))
        assert metrics and all(math.isfinite(float(v)) for v in metrics.values())

    def test_weights_round_trip(self, tmp_path: Any) -> None:
        import torch

        from gencli import weights

        model, prepared, _ = self._model()
        weights.save_model(tmp_path, self.plugin, model, prepared.config)
        loaded = weights.load(self.plugin, str(tmp_path), None, torch.device("cpu"))
        assert loaded.config == prepared.config
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, loaded.model.state_dict()[name]), name

    def test_numpy_sampler_checks_the_models_tensors_and_samples(self, tmp_path: Any) -> None:
        """For a plugin with ``numpy_sampler``: its tensor list is ``build(config).state_dict()``'s, and through the
        core's torch-free loader it samples the saved weights, typed and seeded like ``sample``."""
        import pytest

        if getattr(self.plugin, "numpy_sampler", None) is None:
            pytest.skip("the plugin has no torch-free sampler")
        from gencli import weights

        model, prepared, _ = self._model()
        options = self.plugin.SampleOptions(**self.tiny_sample_options)
        offered = self.plugin.numpy_sampler(prepared.config, options)
        if offered is None:
            pytest.skip("the plugin declines the tiny sample options")
        expected = {name: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
                    for name, t in model.state_dict().items()}
        assert {name: (tuple(shape), dtype) for name, (shape, dtype) in offered.tensors.items()} == expected
        weights.save_model(tmp_path, self.plugin, model, prepared.config)
        loaded = weights.load_located_arrays(weights.locate(self.plugin, str(tmp_path)), offered.tensors)

        def draw(seed: int) -> bytes:
            output = offered.sample(loaded.model, SampleRequest(1, seed, "cpu", input=self.tiny_input()))
            assert isinstance(output, OUTPUT_TYPES[self.plugin.modality])
            return payload(output)

        assert draw(1) == draw(1) and (draw(1) != draw(2) or not self.seed_changes_output)
