"""The sparse products of 0/1 states: the same numbers as the dense matmuls, on the path the RBM trains on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gencli.testing import PluginContract
from gencli_boltzmann import ones, rbm_plugin, sparse
from gencli_boltzmann.sparse import BinaryProducts, binary_matmul, outer_sum


class WideRBM(PluginContract):  # not collected: only its gradients check runs, below
    plugin = rbm_plugin
    tiny_config = {"hidden": sparse.MIN_WIDTH, "chains": 4}  # wide enough for the sparse products


def states(rows: int, columns: int, density: float, seed: int = 0) -> torch.Tensor:
    return (torch.rand(rows, columns, generator=torch.Generator().manual_seed(seed)) < density).float()


@pytest.fixture
def gathers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls that took the sparse path (each is one embedding_bag)."""
    calls: list[int] = []
    embedding_bag = F.embedding_bag

    def counted(*args, **kwargs):
        calls.append(1)
        return embedding_bag(*args, **kwargs)

    monkeypatch.setattr(sparse.F, "embedding_bag", counted)
    return calls


def test_ones_index_rows_like_nonzero() -> None:
    mask = states(37, 300, 0.13).bool()
    mask[5] = False  # an empty row: its bag is empty
    columns, offsets = ones.rows(mask.numpy())
    assert torch.equal(torch.from_numpy(columns), mask.nonzero()[:, 1])
    assert offsets[0] == 0 and torch.equal(torch.from_numpy(offsets).diff(), mask.sum(1))


def test_sparse_products_equal_the_dense_ones(gathers: list[int]) -> None:
    weight = torch.randn(784, 200)
    v, h = states(100, 784, 0.13), states(100, 200, 0.1, seed=1)
    h[3] = 0  # a row with no ones
    products = BinaryProducts(weight)
    torch.testing.assert_close(products.up(v), v @ weight, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(products.down(h), h @ weight.T, rtol=1e-5, atol=1e-4)
    values = torch.randn(100, 200)
    torch.testing.assert_close(outer_sum(v, values), v.T @ values, rtol=1e-5, atol=1e-4)
    assert len(gathers) == 3


def test_dense_where_the_sparse_path_does_not_pay(gathers: list[int]) -> None:
    weight = torch.randn(784, 200)
    busy = states(50, 784, 0.5)  # half on: above SPARSE_BELOW
    torch.testing.assert_close(binary_matmul(busy, weight), busy @ weight)
    narrow = torch.randn(784, sparse.MIN_WIDTH - 1)
    binary_matmul(states(50, 784, 0.1), narrow)
    binary_matmul(states(50, 784, 0.1).to(torch.bfloat16), weight.to(torch.bfloat16))
    assert gathers == []


@pytest.mark.parametrize("options", [{"method": "pcd", "k": 1}, {"method": "cd", "k": 2, "sparsity_target": 0.1}])
def test_gradients_on_the_sparse_path_equal_autograd_on_the_loss(gathers: list[int], options: dict) -> None:
    """The contract's check again, with the hidden layer wide enough for the sparse products."""
    contract = WideRBM()
    contract.tiny_train_options = options
    contract.test_set_gradients_equal_the_loss_gradients()
    assert gathers  # the products above really took the sparse path
