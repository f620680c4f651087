"""The character LSTM's sampler in numpy, and the sample options' checks both samplers share. Torch-free.

A sampling step is one embedding row and a few (N, H) x (H, 4H) products: microseconds of arithmetic, where
importing torch costs seconds. So on the CPU `gencli sample charrnn` runs this copy of the cell (same weights,
same equations as ``torch.nn.LSTM``: gates i, f, g, o; c' = f c + i g; h' = o tanh(c')) and never imports torch.
Its draws come from numpy's PCG64 rather than torch's generator, so a seed gives different (equally likely) text
on the two paths; the tests check that logits and sampling probabilities agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from gencli.data.text import Vocabulary
from gencli.errors import UsageError
from gencli.plugin import SampleRequest, Text


def tensor_specs(config: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor of ``CharLSTM(config).state_dict()``: name -> (shape, dtype); a test checks the two agree."""
    vocab, e, h = max(1, len(config.vocab)), config.embedding_size, config.hidden_size
    specs: dict[str, tuple[int, ...]] = {"embed.weight": (vocab, e)}
    for k in range(config.num_layers):
        specs.update({f"lstm.weight_ih_l{k}": (4 * h, e if k == 0 else h), f"lstm.weight_hh_l{k}": (4 * h, h),
                      f"lstm.bias_ih_l{k}": (4 * h,), f"lstm.bias_hh_l{k}": (4 * h,)})
    specs.update({"head.weight": (vocab, h), "head.bias": (vocab,)})
    return {name: (shape, "float32") for name, shape in specs.items()}


def check_sample_options(codec: Vocabulary, options: Any) -> None:
    missing = codec.unknown(options.prime)
    if missing:
        raise UsageError(f"--prime has characters the model never saw: {''.join(missing)!r}")
    if options.length < 0:
        raise UsageError("--length must be at least 0")
    if not options.temperature > 0:
        raise UsageError("--temperature must be positive")


def start_text(codec: Vocabulary, prime: str) -> str:
    """What the model reads before the first draw: the prime, or a newline (a text's natural start)."""
    return prime or codec.characters[codec.index.get("\n", 0)]


def assemble(prime: str, n: int, draws: Iterable[list[int]], characters: str) -> Iterator[str]:
    """The text of ``n`` streams, one list of n indices per drawn character: one stream is yielded character by
    character as it is drawn; several are printed in turn (prime included), separated by a blank line."""
    yield prime
    outputs: list[list[str]] = [[] for _ in range(n)]
    for ids in draws:
        if n == 1:
            yield characters[ids[0]]
        else:
            for row, index in zip(outputs, ids):
                row.append(characters[index])
    if n > 1:
        yield "".join(outputs[0])
        for row in outputs[1:]:
            yield "\n\n" + prime + "".join(row)


def probabilities(logits: np.ndarray, temperature: float, top_k: int) -> np.ndarray:
    """softmax(logits / T) over the ``top_k`` likeliest (all with 0), in float64: (N, V)."""
    scaled = logits.astype(np.float64) / temperature
    if top_k > 0:
        kth = np.sort(scaled, axis=-1)[:, -min(top_k, scaled.shape[-1])][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)  # ties with the k-th stay in, as with torch.topk
    scaled -= scaled.max(axis=-1, keepdims=True)
    p = np.exp(scaled)
    return p / p.sum(axis=-1, keepdims=True)


def draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``p`` (N, V), by inverting each row's CDF at a uniform number."""
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[0]) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=-1), p.shape[-1] - 1)


class NumpyLSTM:
    """The stacked LSTM and its head on numpy arrays, stepped one character at a time for N streams."""

    def __init__(self, weights: Mapping[str, np.ndarray], num_layers: int) -> None:
        def w(name: str) -> np.ndarray:
            return np.asarray(weights[name], dtype=np.float32)

        bias = [w(f"lstm.bias_ih_l{k}") + w(f"lstm.bias_hh_l{k}") for k in range(num_layers)]
        # Layer 0 sees an embedding row, so its input product is a table lookup: (V, 4H).
        self.table0 = np.ascontiguousarray(w("embed.weight") @ w("lstm.weight_ih_l0").T + bias[0])
        self.w_ih = [None] + [np.ascontiguousarray(w(f"lstm.weight_ih_l{k}").T) for k in range(1, num_layers)]
        self.w_hh = [np.ascontiguousarray(w(f"lstm.weight_hh_l{k}").T) for k in range(num_layers)]  # (H, 4H)
        self.bias = bias
        self.head_w, self.head_b = np.ascontiguousarray(w("head.weight").T), w("head.bias")  # (H, V), (V,)
        self.hidden = self.w_hh[0].shape[0]

    def start(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.zeros((n, self.hidden), np.float32), np.zeros((n, self.hidden), np.float32))
                for _ in self.w_hh]

    def step(self, ids: np.ndarray, state: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Feed one character per stream (N,), updating ``state`` in place; the next character's logits (N, V)."""
        hsz = self.hidden
        x = None
        for k, (h, c) in enumerate(state):
            gates = self.table0[ids] if k == 0 else x @ self.w_ih[k] + self.bias[k]  # (N, 4H)
            gates = gates + h @ self.w_hh[k]
            i = _sigmoid(gates[:, :hsz])
            f = _sigmoid(gates[:, hsz:2 * hsz])
            g = np.tanh(gates[:, 2 * hsz:3 * hsz])
            o = _sigmoid(gates[:, 3 * hsz:])
            c = f * c + i * g
            h = o * np.tanh(c)
            state[k] = (h, c)
            x = h
        return x @ self.head_w + self.head_b


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow warnings for large |x|


def sample_arrays(weights: Mapping[str, np.ndarray], config: Any, options: Any, request: SampleRequest) -> Text:
    """`gencli sample charrnn` on the CPU without torch; the same checks and output layout as ``model.sample``."""
    codec = Vocabulary(config.vocab)
    check_sample_options(codec, options)
    return Text(assemble(options.prime, request.n, _draws(NumpyLSTM(weights, config.num_layers), codec, options,
                                                          request), codec.characters))


def _draws(lstm: NumpyLSTM, codec: Vocabulary, options: Any, request: SampleRequest) -> Iterator[list[int]]:
    n = request.n
    rng = np.random.Generator(np.random.PCG64(request.seed))
    state = lstm.start(n)
    for index in codec.indices(start_text(codec, options.prime)):  # the prime builds the state
        logits = lstm.step(np.full(n, index), state)
    for _ in range(options.length):
        ids = draw(probabilities(logits, options.temperature, options.top_k), rng)
        yield ids.tolist()
        logits = lstm.step(ids, state)
