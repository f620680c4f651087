"""The U-Net and the PatchGAN on tiny sizes: shapes, refusals, the patch size and the dropout noise."""

from __future__ import annotations

import pytest
import torch

from gencli.errors import UsageError
from gencli_pix2pix.networks import PatchGAN, UNet, patch_layers_for, receptive_field
from gencli_pix2pix.training import halvings


def unet(depth: int = 3, in_channels: int = 1, out_channels: int = 3, dropout_layers: int = 1) -> UNet:
    torch.manual_seed(0)
    return UNet(in_channels=in_channels, out_channels=out_channels, depth=depth, base_channels=4, max_channels=8,
                dropout_layers=dropout_layers)


@pytest.mark.parametrize(("depth", "height", "width"), [(3, 8, 8), (3, 16, 24), (1, 2, 6), (5, 32, 32)])
def test_unet_keeps_the_size_for_multiples_of_two_to_the_depth(depth, height, width) -> None:
    out = unet(depth)(torch.rand(2, 1, height, width) * 2 - 1)
    assert out.shape == (2, 3, height, width)
    assert float(out.detach().abs().max()) <= 1.0  # tanh range


@pytest.mark.parametrize(("height", "width"), [(12, 16), (16, 20), (7, 8)])
def test_unet_refuses_other_sizes_with_a_clear_error(height, width) -> None:
    with pytest.raises(UsageError, match=r"multiples of 8; got .*" + f"{height} x {width}"):
        unet(3)(torch.zeros(1, 1, height, width))


def test_skip_connections_carry_the_input_past_the_bottleneck() -> None:
    """With the bottleneck's output forced to zero the output still follows the input: the skips carry it
    (an encoder-decoder without them would give one constant image)."""
    model = unet(3, out_channels=1, dropout_layers=0)
    model.down[-1].register_forward_hook(lambda module, args, output: torch.zeros_like(output))
    first, second = torch.rand(2, 1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(model(first), model(second), atol=1e-3)
    with torch.no_grad():
        for conv in model.up[1:]:  # the decoder layers that read the skips: cut them and the outputs agree
            conv.weight[conv.in_channels // 2:] = 0  # (in, out, 4, 4): the second half of the inputs is the skip
    assert torch.allclose(model(first), model(second), atol=1e-6)


def test_dropout_is_the_noise_and_stays_on_in_eval_mode() -> None:
    model = unet(3, dropout_layers=2).eval()
    x = torch.rand(1, 1, 16, 16)
    torch.manual_seed(1)
    first = model(x)
    torch.manual_seed(1)
    again = model(x)
    torch.manual_seed(2)
    other = model(x)
    assert torch.equal(first, again) and not torch.equal(first, other)
    quiet = unet(3, dropout_layers=0).eval()
    assert torch.equal(quiet(x), quiet(x))


@pytest.mark.parametrize("layers", [1, 2])
def test_patchgan_gives_one_logit_per_patch_of_the_stated_size(layers) -> None:
    """The receptive field of one output logit, found from its input gradient, is the patch size the code
    states (16 for one stride-2 layer, 34 for two; the paper's three give 70)."""
    torch.manual_seed(0)
    model = PatchGAN(in_channels=1, out_channels=3, base_channels=4, stride_two_layers=layers)
    # Instance norm spreads its statistics over the whole image; the patch is the convolutions' geometry.
    model.net = torch.nn.Sequential(*[layer for layer in model.net if not isinstance(layer, torch.nn.InstanceNorm2d)])
    for parameter in model.parameters():  # positive weights: no gradient cancels out by chance
        parameter.data = parameter.data.abs() + 0.01
    condition = torch.rand(1, 1, 96, 96, requires_grad=True)
    image = torch.rand(1, 3, 96, 96)
    logits = model(condition, image)
    assert logits.shape[:2] == (1, 1) and logits.shape[2] == logits.shape[3] > 1
    middle = logits.shape[2] // 2
    logits[0, 0, middle, middle].backward()
    rows = torch.nonzero(condition.grad[0, 0].abs().sum(1)).flatten()
    assert int(rows.max() - rows.min() + 1) == receptive_field(layers) == model.patch


def test_patch_size_scales_with_the_image() -> None:
    assert receptive_field(3) == 70  # the paper's 70 x 70 PatchGAN
    assert [patch_layers_for(size) for size in (32, 64, 128, 256, 1024)] == [1, 1, 2, 3, 4]
    assert [halvings(size) for size in (32, 64, 256, 96, 7)] == [5, 6, 8, 5, 0]
